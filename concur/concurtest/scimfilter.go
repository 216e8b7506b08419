package concurtest

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The Identity v4.1 search filter (D-SRCH "Filtering"): SCIM attribute
// operators (eq ne co sw ew pr gt ge lt le), not > and > or, parentheses,
// and complex groupings attr[...]. Inside a grouping of a multi-valued
// attribute (emails, addresses) Concur refuses not and ne, an or nested in
// parentheses, the same attribute twice in one and, and any operator but
// eq, sw, ew, co and pr; groupings of single-valued attributes (name, ...)
// take everything.

// Bounds that keep one filter cheap to parse and evaluate.
const (
	maxFilterLength = 4096
	maxFilterDepth  = 16
)

// filterableAttributes is D-SRCH's "Allowed Attributes" table.
var filterableAttributes = func() map[string][]string {
	paths := [][]string{
		{"active"}, {"addresses", "country"}, {"addresses", "locality"}, {"addresses", "region"}, {"addresses", "type"},
		{"emails", "value"}, {"emails", "type"}, {"emails", "verified"}, {"entitlements"}, {"externalId"}, {"id"},
		{"meta", "created"}, {"meta", "lastModified"}, {"name", "familyName"}, {"name", "givenName"}, {"nickName"}, {"userName"},
		{SchemaEnterpriseUser, "companyId"}, {SchemaEnterpriseUser, "costCenter"}, {SchemaEnterpriseUser, "department"},
		{SchemaEnterpriseUser, "division"}, {SchemaEnterpriseUser, "employeeNumber"}, {SchemaEnterpriseUser, "startDate"},
		{SchemaEnterpriseUser, "terminationDate"}, {SchemaEnterpriseUser, "manager", "employeeNumber"},
		{SchemaEnterpriseUser, "manager", "value"}, {SchemaSAPUser, "userUuid"},
	}
	out := map[string][]string{}
	for _, p := range paths {
		out[strings.ToLower(strings.Join(p, "."))] = p
		// Every prefix is a valid base of a grouping (name[...], emails[...]).
		for i := 1; i < len(p); i++ {
			key := strings.ToLower(strings.Join(p[:i], "."))
			if _, ok := out[key]; !ok {
				out[key] = p[:i]
			}
		}
	}
	return out
}()

// multiValued attributes have Concur's grouping limits.
var multiValued = map[string]bool{"emails": true, "addresses": true}

// filterNode is a parsed filter; match is evaluated against a user resource
// (or, inside a grouping, against one element of the grouped attribute).
type filterNode interface {
	match(obj map[string]any) bool
}

type (
	orNode    struct{ left, right filterNode }
	andNode   struct{ left, right filterNode }
	notNode   struct{ inner filterNode }
	groupNode struct {
		base  []string
		inner filterNode
	}
	compareNode struct {
		path  []string // relative to the grouping, if any
		op    string
		value any // string, float64, bool or nil
	}
)

func (n orNode) match(o map[string]any) bool  { return n.left.match(o) || n.right.match(o) }
func (n andNode) match(o map[string]any) bool { return n.left.match(o) && n.right.match(o) }
func (n notNode) match(o map[string]any) bool { return !n.inner.match(o) }

// match: some element of the grouped attribute satisfies the inner filter
// on its own ("one and only one record").
func (n groupNode) match(o map[string]any) bool {
	for _, v := range attributeValues(o, n.base) {
		if m, ok := v.(map[string]any); ok && n.inner.match(m) {
			return true
		}
	}
	return false
}

func (n compareNode) match(o map[string]any) bool {
	vals := attributeValues(o, n.path)
	switch n.op {
	case "pr":
		for _, v := range vals {
			if s, isStr := v.(string); v != nil && (!isStr || s != "") {
				return true
			}
		}
		return false
	case "ne":
		// "When using ne, results can include null values."
		return !compareNode{path: n.path, op: "eq", value: n.value}.match(o)
	case "eq":
		if n.value == nil {
			for _, v := range vals {
				if v != nil {
					return false
				}
			}
			return true
		}
	}
	for _, v := range vals {
		if compareValue(v, n.op, n.value) {
			return true
		}
	}
	return false
}

// attributeValues walks path through obj, flattening multi-valued
// attributes at every step. Keys are canonical (the resource's own case).
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
func compareValue(v any, op string, want any) bool {
	switch w := want.(type) {
	case string:
		s, ok := v.(string)
		if !ok {
			return false
		}
		s, w = strings.ToLower(s), strings.ToLower(w)
		switch op {
		case "eq":
			return s == w
		case "co":
			return strings.Contains(s, w)
		case "sw":
			return strings.HasPrefix(s, w)
		case "ew":
			return strings.HasSuffix(s, w)
		case "gt":
			return s > w
		case "ge":
			return s >= w
		case "lt":
			return s < w
		case "le":
			return s <= w
		}
	case bool:
		b, ok := v.(bool)
		return ok && op == "eq" && b == w
	case float64:
		f, ok := toFloat(v)
		if !ok {
			return false
		}
		switch op {
		case "eq":
			return f == w
		case "gt":
			return f > w
		case "ge":
			return f >= w
		case "lt":
			return f < w
		case "le":
			return f <= w
		}
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// filterError is a filter Concur would refuse (400 invalidFilter).
type filterError struct{ msg string }

func (e *filterError) Error() string { return e.msg }

// parseSearchFilter parses a v4.1 search filter.
func parseSearchFilter(f string) (filterNode, error) {
	if len(f) > maxFilterLength {
		return nil, &filterError{"Filter is longer than " + strconv.Itoa(maxFilterLength) + " characters"}
	}
	toks, err := tokenizeFilter(f)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	n, err := p.parseOr(scope{})
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, &filterError{"Invalid filter: unexpected [" + p.toks[p.pos].text + "]"}
	}
	return n, nil
}

type filterToken struct {
	text   string
	quoted bool // a JSON string literal
}

func tokenizeFilter(f string) ([]filterToken, error) {
	var toks []filterToken
	for i := 0; i < len(f); {
		switch c := f[i]; {
		case c == ' ' || c == '\t':
			i++
		case strings.IndexByte("()[]", c) >= 0:
			toks = append(toks, filterToken{text: string(c)})
			i++
		case c == '"':
			j := i + 1
			for ; j < len(f) && f[j] != '"'; j++ {
				if f[j] == '\\' {
					j++
				}
			}
			if j >= len(f) {
				return nil, &filterError{"Invalid filter: unterminated string"}
			}
			toks = append(toks, filterToken{text: f[i : j+1], quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(f) && strings.IndexByte(" \t()[]\"", f[j]) < 0 {
				j++
			}
			toks = append(toks, filterToken{text: f[i:j]})
			i = j
		}
	}
	if len(toks) == 0 {
		return nil, &filterError{"Invalid filter: empty"}
	}
	return toks, nil
}

// scope is where the parser is: inside a grouping (base set), of a
// multi-valued attribute, how many parentheses deep within it.
type scope struct {
	base       []string
	multi      bool
	parenDepth int
	depth      int
	inGrouping bool
}

type filterParser struct {
	toks []filterToken
	pos  int
}

func (p *filterParser) peekWord(w string) bool {
	return p.pos < len(p.toks) && !p.toks[p.pos].quoted && strings.EqualFold(p.toks[p.pos].text, w)
}

func (p *filterParser) expect(text string) error {
	if p.pos >= len(p.toks) || p.toks[p.pos].text != text || p.toks[p.pos].quoted {
		return &filterError{"Invalid filter: expected [" + text + "]"}
	}
	p.pos++
	return nil
}

func (p *filterParser) parseOr(sc scope) (filterNode, error) {
	if sc.depth > maxFilterDepth {
		return nil, &filterError{"Invalid filter: nested too deeply"}
	}
	left, err := p.parseAnd(sc)
	for err == nil && p.peekWord("or") {
		if sc.multi && sc.parenDepth > 0 {
			return nil, &filterError{"Invalid filter: or may not be nested within a complex grouping of a multi-valued attribute"}
		}
		p.pos++
		var right filterNode
		if right, err = p.parseAnd(sc); err == nil {
			left = orNode{left, right}
		}
	}
	return left, err
}

func (p *filterParser) parseAnd(sc scope) (filterNode, error) {
	seen := map[string]bool{}
	left, err := p.parseUnary(sc, seen)
	for err == nil && p.peekWord("and") {
		p.pos++
		var right filterNode
		if right, err = p.parseUnary(sc, seen); err == nil {
			left = andNode{left, right}
		}
	}
	return left, err
}

func (p *filterParser) parseUnary(sc scope, seen map[string]bool) (filterNode, error) {
	if p.pos >= len(p.toks) {
		return nil, &filterError{"Invalid filter: ends too early"}
	}
	inner := sc
	inner.depth++
	switch {
	case p.peekWord("not"):
		if sc.multi {
			return nil, &filterError{"Invalid filter: not is restricted within complex groupings of multi-valued attributes"}
		}
		p.pos++
		n, err := p.parenthesised(inner)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	case p.toks[p.pos].text == "(" && !p.toks[p.pos].quoted:
		return p.parenthesised(inner)
	}
	return p.parseAttributeExpression(sc, seen)
}

func (p *filterParser) parenthesised(sc scope) (filterNode, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	sc.parenDepth++
	n, err := p.parseOr(sc)
	if err != nil {
		return nil, err
	}
	return n, p.expect(")")
}

func (p *filterParser) parseAttributeExpression(sc scope, seen map[string]bool) (filterNode, error) {
	tok := p.toks[p.pos]
	if tok.quoted {
		return nil, &filterError{"Invalid filter: expected an attribute, got [" + tok.text + "]"}
	}
	p.pos++
	full, rel, err := resolveFilterPath(sc.base, tok.text)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) && p.toks[p.pos].text == "[" && !p.toks[p.pos].quoted {
		return p.parseGrouping(sc, full, rel)
	}
	if len(full) > 0 && !isLeafAttribute(full) {
		return nil, &filterError{"Invalid filter: [" + tok.text + "] is not a filterable attribute"}
	}
	if sc.multi {
		key := strings.ToLower(strings.Join(full, "."))
		if seen[key] {
			return nil, &filterError{"Invalid filter: duplicate attributes may not be conjoined with and inside a complex grouping"}
		}
		seen[key] = true
	}
	if p.pos >= len(p.toks) || p.toks[p.pos].quoted {
		return nil, &filterError{"Invalid filter: missing operator after [" + tok.text + "]"}
	}
	op := strings.ToLower(p.toks[p.pos].text)
	p.pos++
	switch op {
	case "pr":
		return compareNode{path: rel, op: op}, nil
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
	default:
		return nil, &filterError{"Invalid filter: unsupported operator [" + op + "]"}
	}
	if sc.multi && op != "eq" && op != "co" && op != "sw" && op != "ew" {
		return nil, &filterError{"Invalid filter: operator " + op + " is restricted within complex groupings of multi-valued attributes"}
	}
	value, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	return compareNode{path: rel, op: op, value: value}, nil
}

func (p *filterParser) parseGrouping(sc scope, full, rel []string) (filterNode, error) {
	if sc.inGrouping {
		return nil, &filterError{"Invalid filter: complex groupings may not be nested"}
	}
	if isLeafAttribute(full) {
		return nil, &filterError{"Invalid filter: [" + strings.Join(full, ".") + "] has no sub-attributes to group"}
	}
	p.pos++ // "["
	inner := scope{base: full, multi: multiValued[full[0]], inGrouping: true, depth: sc.depth + 1}
	n, err := p.parseOr(inner)
	if err != nil {
		return nil, err
	}
	if err := p.expect("]"); err != nil {
		return nil, err
	}
	return groupNode{base: rel, inner: n}, nil
}

func (p *filterParser) parseValue() (any, error) {
	if p.pos >= len(p.toks) {
		return nil, &filterError{"Invalid filter: missing value"}
	}
	tok := p.toks[p.pos]
	p.pos++
	if tok.quoted {
		var s string
		if err := json.Unmarshal([]byte(tok.text), &s); err != nil {
			return nil, &filterError{"Invalid filter: bad string " + tok.text}
		}
		return s, nil
	}
	switch strings.ToLower(tok.text) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if isUUID(tok.text) {
		return tok.text, nil // "UUIDs may optionally include the quotes"
	}
	if f, err := strconv.ParseFloat(tok.text, 64); err == nil {
		return f, nil
	}
	return nil, &filterError{"Invalid filter: value [" + tok.text + "] must be a quoted string, number, boolean or null"}
}

// resolveFilterPath turns an attribute reference (relative to base inside a
// grouping) into its canonical full path and the path relative to base.
func resolveFilterPath(base []string, name string) (full, rel []string, err error) {
	lower := strings.ToLower(name)
	var segs []string
	switch {
	case len(base) > 0:
		segs = strings.Split(name, ".")
	case strings.HasPrefix(lower, strings.ToLower(SchemaEnterpriseUser)+":"):
		segs = append([]string{SchemaEnterpriseUser}, strings.Split(name[len(SchemaEnterpriseUser)+1:], ".")...)
	case strings.HasPrefix(lower, strings.ToLower(SchemaSAPUser)+":"):
		segs = append([]string{SchemaSAPUser}, strings.Split(name[len(SchemaSAPUser)+1:], ".")...)
	case strings.HasPrefix(lower, strings.ToLower(SchemaCoreUser)+":"):
		segs = strings.Split(name[len(SchemaCoreUser)+1:], ".")
	default:
		segs = strings.Split(name, ".")
	}
	key := strings.ToLower(strings.Join(append(append([]string(nil), base...), segs...), "."))
	canon, ok := filterableAttributes[key]
	if !ok {
		return nil, nil, &filterError{"Invalid filter: [" + name + "] is not a filterable attribute"}
	}
	return canon, canon[len(base):], nil
}

func isLeafAttribute(path []string) bool {
	key := strings.ToLower(strings.Join(path, "."))
	for k := range filterableAttributes {
		if strings.HasPrefix(k, key+".") {
			return false
		}
	}
	return true
}
