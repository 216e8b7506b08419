package concurtest

import (
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// The Identity v4.1 search filter (D-SRCH "Filtering"). Parsing and
// Concur's documented limits are concur.ParseSearchFilter's (the RFC 7644
// grammar is github.com/scim2/filter-parser's); what the simulator adds is
// evaluating the parsed filter against a user resource.

// searchFilter is a parsed filter, ready to match user resources.
type searchFilter struct{ expr filter.Expression }

func parseSearchFilter(f string) (searchFilter, error) {
	expr, err := concur.ParseSearchFilter(f)
	return searchFilter{expr: expr}, err
}

func (f searchFilter) match(obj map[string]any) bool { return matchExpr(f.expr, obj) }

// matchExpr evaluates e against obj (a user, or inside a grouping one
// element of the grouped attribute). Attribute names in e are already
// spelt as the resource spells them.
func matchExpr(e filter.Expression, obj map[string]any) bool {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if e.Operator == filter.AND {
			return matchExpr(e.Left, obj) && matchExpr(e.Right, obj)
		}
		return matchExpr(e.Left, obj) || matchExpr(e.Right, obj)
	case *filter.NotExpression:
		return !matchExpr(e.Expression, obj)
	case *filter.ValuePath:
		// Some element of the grouped attribute satisfies the inner filter
		// on its own ("one and only one record").
		for _, v := range attributeValues(obj, pathOf(e.AttributePath)) {
			if m, ok := v.(map[string]any); ok && matchExpr(e.ValueFilter, m) {
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		return matchComparison(attributeValues(obj, pathOf(e.AttributePath)), e.Operator, e.CompareValue)
	}
	return false
}

// pathOf is the key path of an attribute in a resource: the extension
// schema's URN is a top-level key; the core schema's is not.
func pathOf(p filter.AttributePath) []string {
	var path []string
	if uri := p.URI(); uri != "" && !strings.EqualFold(uri, SchemaCoreUser) {
		path = append(path, uri)
	}
	path = append(path, p.AttributeName)
	if p.SubAttribute != nil {
		path = append(path, *p.SubAttribute)
	}
	return path
}

func matchComparison(vals []any, op filter.CompareOperator, want any) bool {
	switch op {
	case filter.PR:
		return slices.ContainsFunc(vals, present)
	case filter.NE:
		// "When using ne, results can include null values."
		return !matchComparison(vals, filter.EQ, want)
	case filter.EQ:
		if want == nil {
			return !slices.ContainsFunc(vals, func(v any) bool { return v != nil })
		}
	}
	for _, v := range vals {
		if compareValue(v, op, want) {
			return true
		}
	}
	return false
}

// present is SCIM's pr: a value that is neither null nor empty.
func present(v any) bool {
	s, isStr := v.(string)
	return v != nil && (!isStr || s != "")
}

// attributeValues walks path through obj, flattening multi-valued
// attributes at every step.
func attributeValues(obj map[string]any, path []string) []any {
	cur := []any{obj}
	for _, seg := range path {
		var next []any
		for _, c := range cur {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			switch v := m[seg].(type) {
			case []any:
				next = append(next, v...)
			default:
				next = append(next, v)
			}
		}
		cur = next
	}
	return cur
}

// compareValue applies op to one attribute value; strings compare without
// regard to case (Concur: "Case insensitive"), dates as their ISO text.
func compareValue(v any, op filter.CompareOperator, want any) bool {
	switch w := want.(type) {
	case string:
		s, ok := v.(string)
		return ok && compareStrings(strings.ToLower(s), op, strings.ToLower(w))
	case bool:
		b, ok := v.(bool)
		return ok && op == filter.EQ && b == w
	case int:
		return compareNumber(v, op, float64(w))
	case float64:
		return compareNumber(v, op, w)
	}
	return false
}

func compareStrings(s string, op filter.CompareOperator, w string) bool {
	switch op {
	case filter.EQ:
		return s == w
	case filter.CO:
		return strings.Contains(s, w)
	case filter.SW:
		return strings.HasPrefix(s, w)
	case filter.EW:
		return strings.HasSuffix(s, w)
	}
	return compareOrdered(strings.Compare(s, w), op)
}

func compareNumber(v any, op filter.CompareOperator, w float64) bool {
	var f float64
	switch n := v.(type) {
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case float64:
		f = n
	default:
		return false
	}
	switch {
	case f < w:
		return compareOrdered(-1, op)
	case f > w:
		return compareOrdered(1, op)
	}
	return op == filter.EQ || compareOrdered(0, op)
}

// compareOrdered turns a three-way comparison into gt/ge/lt/le.
func compareOrdered(c int, op filter.CompareOperator) bool {
	switch op {
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}
