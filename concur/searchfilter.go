package concur

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// Identity v4.1 search filters (D-SRCH "Filtering"). The grammar is RFC
// 7644's, parsed by github.com/scim2/filter-parser; what is ours is
// Concur's dialect and its documented limits:
//   - values Concur accepts unquoted: dates ("startDate le 2013-12-31", the
//     guide's own example) and UUIDs ("UUIDs may optionally include the
//     quotes");
//   - only the attributes of the guide's "Allowed Attributes" table;
//   - inside a complex grouping of a multi-valued attribute (emails,
//     addresses): no not, no ne, only eq sw ew co pr, no attribute and-ed
//     with itself (an or nested in parentheses there is outside the RFC
//     grammar, so the parser refuses it already).
//
// Concur documents no length or nesting limit; these bounds are ours, so
// that one filter is cheap to check here and to evaluate in the simulator.
const (
	MaxSearchFilterLength = 4096
	MaxSearchFilterDepth  = 16
)

// FilterError says why a search filter is refused.
type FilterError struct{ Reason string }

func (e *FilterError) Error() string { return "invalid filter: " + e.Reason }

func filterErrorf(format string, args ...any) error {
	return &FilterError{Reason: fmt.Sprintf(format, args...)}
}

// Schema URNs a filter may name attributes under.
const (
	schemaCoreUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaSAPUser        = "urn:ietf:params:scim:schemas:extension:sap:2.0:User"
)

// searchAttributes is D-SRCH's "Allowed Attributes" table, each entry the
// canonical path (schema URN first for extension attributes).
var searchAttributes = func() map[string][]string {
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
	}
	return out
}()

// multiValued attributes carry Concur's grouping limits.
var multiValued = map[string]bool{"emails": true, "addresses": true}

// ParseSearchFilter parses f as Concur's search accepts it and checks
// Concur's limits. Attribute names in the returned expression are spelt as
// the schema spells them (SCIM names are case-insensitive); string values
// are unescaped. Every error is a *FilterError.
func ParseSearchFilter(f string) (filter.Expression, error) {
	if len(f) > MaxSearchFilterLength {
		return nil, filterErrorf("longer than %d characters", MaxSearchFilterLength)
	}
	if strings.TrimSpace(f) == "" {
		return nil, filterErrorf("empty")
	}
	sc := &dialectScan{}
	if err := sc.scan(f); err != nil {
		return nil, err
	}
	expr, err := parseFilterText(sc.out.String())
	if err != nil {
		return nil, err
	}
	if expr, err = sc.graft(expr); err != nil {
		return nil, err
	}
	if err := (&filterCheck{}).expr(expr); err != nil {
		return nil, err
	}
	return expr, nil
}

func parseFilterText(text string) (filter.Expression, error) {
	expr, err := filter.ParseFilter([]byte(text))
	if err != nil {
		return nil, filterErrorf("not a SCIM filter expression (%s)", shorten(err.Error()))
	}
	return expr, nil
}

// groupingMark names the stand-in for the i-th complex grouping. The
// parser's own grouping grammar takes at most one and/or and no
// parentheses, where Concur's guide shows longer ones
// (emails[type eq "work" or value sw "admin" or verified eq false]), so
// each grouping's inside is parsed as a filter of its own and grafted back.
const groupingMark = "zzConcurGrouping"

type grouping struct{ base, inner string }

// dialectScan rewrites Concur's dialect into RFC 7644 text: bare dates and
// UUIDs quoted, groupings cut out. It also bounds nesting and refuses an or
// inside parentheses within a grouping of a multi-valued attribute (D-SRCH
// "Limitations"), which the parsed tree no longer shows.
type dialectScan struct {
	out       strings.Builder
	groupings []grouping
	cur       *strings.Builder // the grouping being read, else nil
	multi     bool             // the current grouping's attribute is multi-valued
	depth     int
	parens    int // parentheses open inside the current grouping
}

func (sc *dialectScan) w() *strings.Builder {
	if sc.cur != nil {
		return sc.cur
	}
	return &sc.out
}

func (sc *dialectScan) scan(f string) error {
	if strings.Contains(strings.ToLower(f), strings.ToLower(groupingMark)) {
		return filterErrorf("%s is not an attribute Identity search filters on", groupingMark)
	}
	for i := 0; i < len(f); {
		n, err := sc.step(f, i)
		if err != nil {
			return err
		}
		i += n
	}
	if sc.cur != nil {
		return filterErrorf("complex grouping without ]")
	}
	return nil
}

// step consumes the token at f[i:] and says how many bytes it took.
func (sc *dialectScan) step(f string, i int) (int, error) {
	switch c := f[i]; {
	case c == '"':
		end := closingQuote(f, i)
		if end < 0 {
			return 0, filterErrorf("unterminated string")
		}
		sc.w().WriteString(f[i : end+1])
		return end + 1 - i, nil
	case c == '[':
		return 1, sc.open()
	case c == ']':
		return 1, sc.close()
	case c == '(' || c == ')':
		if c == '(' {
			sc.parens++
			if sc.depth++; sc.depth > MaxSearchFilterDepth {
				return 0, filterErrorf("nested more than %d deep", MaxSearchFilterDepth)
			}
		} else {
			sc.parens--
			sc.depth--
		}
	case i == 0 || f[i-1] == ' ' || f[i-1] == '(' || f[i-1] == '[':
		word := f[i:]
		if n := strings.IndexAny(word, " )]"); n >= 0 {
			word = word[:n]
		}
		if sc.cur != nil && sc.multi && sc.parens > 0 && strings.EqualFold(word, "or") {
			return 0, filterErrorf("or may not be nested in parentheses inside a complex grouping of a multi-valued attribute")
		}
		if isBareDate(word) || ValidateUserID(word) == nil {
			sc.w().WriteString(`"` + word + `"`)
			return len(word), nil
		}
	}
	sc.w().WriteByte(f[i])
	return 1, nil
}

// open starts a grouping: the attribute just written becomes its base.
func (sc *dialectScan) open() error {
	if sc.cur != nil {
		return filterErrorf("complex groupings may not be nested")
	}
	text := sc.out.String()
	cut := strings.LastIndexAny(strings.TrimRight(text, " "), " (") + 1
	base := strings.TrimSpace(text[cut:])
	if base == "" {
		return filterErrorf("[ without an attribute before it")
	}
	sc.out.Reset()
	sc.out.WriteString(text[:cut])
	sc.groupings = append(sc.groupings, grouping{base: base})
	sc.cur, sc.parens = &strings.Builder{}, 0
	last := base[strings.LastIndex(base, ":")+1:]
	sc.multi = multiValued[strings.ToLower(last)]
	return nil
}

func (sc *dialectScan) close() error {
	if sc.cur == nil {
		return filterErrorf("] without [")
	}
	n := len(sc.groupings) - 1
	sc.groupings[n].inner = sc.cur.String()
	sc.cur = nil
	fmt.Fprintf(&sc.out, "%s%d pr", groupingMark, n)
	return nil
}

// groupingOf is the grouping a stand-in attribute name marks.
func (sc *dialectScan) groupingOf(name string) (grouping, bool) {
	i, err := strconv.Atoi(strings.TrimPrefix(name, groupingMark))
	if !strings.HasPrefix(name, groupingMark) || err != nil || i < 0 || i >= len(sc.groupings) {
		return grouping{}, false
	}
	return sc.groupings[i], true
}

// graft puts each grouping back into the parsed tree as a ValuePath.
func (sc *dialectScan) graft(e filter.Expression) (filter.Expression, error) {
	var err error
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if e.Left, err = sc.graft(e.Left); err == nil {
			e.Right, err = sc.graft(e.Right)
		}
	case *filter.NotExpression:
		e.Expression, err = sc.graft(e.Expression)
	case *filter.AttributeExpression:
		g, ok := sc.groupingOf(e.AttributePath.AttributeName)
		if !ok {
			return e, nil
		}
		vp := &filter.ValuePath{}
		if vp.AttributePath, err = filter.ParseAttrPath([]byte(g.base)); err != nil {
			return nil, filterErrorf("%q is not an attribute name", shorten(g.base))
		}
		if vp.ValueFilter, err = parseFilterText(g.inner); err != nil {
			return nil, err
		}
		return vp, nil
	}
	return e, err
}

// closingQuote is the index of the quote ending the string opened at i, or -1.
func closingQuote(f string, i int) int {
	for j := i + 1; j < len(f); j++ {
		switch f[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// isBareDate matches YYYY-MM-DD, optionally followed by a time
// (2013-12-31T00:00:00Z): what Concur's date attributes take unquoted.
func isBareDate(w string) bool {
	if len(w) < 10 || w[4] != '-' || w[7] != '-' {
		return false
	}
	for i, c := range w[:10] {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return len(w) == 10 || w[10] == 'T'
}

// filterCheck walks a parsed filter applying Concur's limits.
type filterCheck struct {
	base  []string // the grouped attribute inside attr[...], else nil
	multi bool     // base is multi-valued
	seen  map[string]bool
}

func (c *filterCheck) expr(e filter.Expression) error {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if c.multi && e.Operator == filter.AND {
			return c.conjunction(e)
		}
		if err := c.expr(e.Left); err != nil {
			return err
		}
		return c.expr(e.Right)
	case *filter.NotExpression:
		if c.multi {
			return filterErrorf("not is not allowed inside a complex grouping of %s", c.base[0])
		}
		return c.expr(e.Expression)
	case *filter.ValuePath:
		return c.grouping(e)
	case *filter.AttributeExpression:
		return c.comparison(e)
	}
	return filterErrorf("unsupported expression")
}

// conjunction checks an and inside a multi-valued grouping: no attribute twice.
func (c *filterCheck) conjunction(e *filter.LogicalExpression) error {
	outer := c.seen
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	defer func() { c.seen = outer }()
	if err := c.expr(e.Left); err != nil {
		return err
	}
	return c.expr(e.Right)
}

func (c *filterCheck) grouping(e *filter.ValuePath) error {
	if c.base != nil {
		return filterErrorf("complex groupings may not be nested")
	}
	base, err := canonicalPath(nil, &e.AttributePath, true)
	if err != nil {
		return err
	}
	inner := &filterCheck{base: base, multi: multiValued[base[0]]}
	return inner.expr(e.ValueFilter)
}

func (c *filterCheck) comparison(e *filter.AttributeExpression) error {
	path, err := canonicalPath(c.base, &e.AttributePath, false)
	if err != nil {
		return err
	}
	if c.multi {
		switch e.Operator {
		case filter.EQ, filter.SW, filter.EW, filter.CO, filter.PR:
		default:
			return filterErrorf("operator %s is not allowed inside a complex grouping of %s", e.Operator, c.base[0])
		}
		key := strings.Join(path, ".")
		if c.seen != nil && c.seen[key] {
			return filterErrorf("%s may not be and-ed with itself inside a complex grouping", key)
		}
		if c.seen != nil {
			c.seen[key] = true
		}
	}
	if s, ok := e.CompareValue.(string); ok {
		var v string
		if json.Unmarshal([]byte(`"`+s+`"`), &v) != nil {
			return filterErrorf("bad string value %q", shorten(s))
		}
		e.CompareValue = v
	}
	return nil
}

// canonicalPath resolves p (relative to base inside a grouping) against the
// allowed attributes and rewrites p in the schema's spelling. A grouping's
// base is a prefix of allowed attributes; a comparison names a whole one.
func canonicalPath(base []string, p *filter.AttributePath, isBase bool) ([]string, error) {
	var segs []string
	switch uri := strings.ToLower(p.URI()); uri {
	case "", strings.ToLower(schemaCoreUser):
	case strings.ToLower(SchemaEnterpriseUser):
		segs = append(segs, SchemaEnterpriseUser)
	case strings.ToLower(SchemaSAPUser):
		segs = append(segs, SchemaSAPUser)
	default:
		return nil, filterErrorf("unknown schema %q", shorten(p.URI()))
	}
	segs = append(append(append([]string(nil), base...), segs...), p.AttributeName)
	if p.SubAttribute != nil {
		segs = append(segs, *p.SubAttribute)
	}
	key := strings.ToLower(strings.Join(segs, "."))
	if canon, ok := searchAttributes[key]; ok && !isBase {
		return rewrite(p, base, canon), nil
	}
	for k, canon := range searchAttributes {
		if isBase && strings.HasPrefix(k, key+".") {
			return rewrite(p, base, canon[:len(segs)]), nil
		}
	}
	return nil, filterErrorf("%s is not an attribute Identity search filters on", shorten(p.String()))
}

// rewrite spells p as canon does (canon includes base).
func rewrite(p *filter.AttributePath, base, canon []string) []string {
	rel := canon[len(base):]
	if rel[0] == SchemaEnterpriseUser || rel[0] == SchemaSAPUser {
		uri := rel[0]
		p.URIPrefix, rel = &uri, rel[1:]
	}
	p.AttributeName = rel[0]
	if len(rel) > 1 {
		sub := rel[1]
		p.SubAttribute = &sub
	}
	return canon
}
