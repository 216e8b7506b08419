package concurtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Identity paths (reference 7.3): v4 and v4.1 share the user resource.
const (
	usersPath    = "/profile/identity/v4/Users"
	usersPathV41 = "/profile/identity/v4.1/Users"
	searchSuffix = "/.search"
)

// Identity paging limits (reference 7.3, D-SRCH).
const (
	DefaultUserCount    = 10
	MaxUserCount        = 100
	DefaultUserCountV41 = 100
	MaxUserCountV41     = 1000
)

// SCIM message schemas of Identity v4.1 bodies.
const (
	SchemaSearchRequest = "urn:ietf:params:scim:api:messages:concur:2.0:SearchRequest"
	SchemaConcurError   = "urn:ietf:params:scim:api:messages:concur:2.0:Error"
)

// scimError writes the SCIM error shape of reference 7.5 (status is a
// string). A 400 carries Concur's messages extension, as the docs' example
// of an invalid attribute path does.
func scimError(w http.ResponseWriter, status int, scimType, detail string) {
	body := map[string]any{
		"schemas": []any{SchemaError},
		"status":  strconv.Itoa(status),
		"detail":  detail,
	}
	if scimType != "" {
		body["scimType"] = scimType
	}
	if status == http.StatusBadRequest {
		body["schemas"] = []any{SchemaError, SchemaConcurError}
		body[SchemaConcurError] = map[string]any{"messages": []any{
			map[string]any{"code": "INVALID_INPUT", "message": detail, "type": "error"},
		}}
	}
	writeJSON(w, status, body)
}

// identityRoute is a parsed Identity request path.
type identityRoute struct {
	base string // usersPath or usersPathV41
	kind string // "list", "user", "search", or a configuration resource (resSchemas, ...)
	id   string
}

func (rt identityRoute) v41() bool { return rt.base == usersPathV41 }

// version is "v4" or "v4.1", as paths and meta.location spell it.
func (rt identityRoute) version() string {
	if rt.v41() {
		return "v4.1"
	}
	return "v4"
}

// parseIdentityPath recognises, under /profile/identity/v4 and /v4.1:
// /Users, /Users/ (the trailing slash of the Identity v4 reference example
// and SAP's sample client is the list too), /Users/{id} and, on v4.1,
// /Users/.search; and /Schemas[/{id}], /ResourceTypes[/{id}] and
// /ServiceProviderConfig, each with an optional trailing slash as the
// references write them. path is as the front door passed it on.
func parseIdentityPath(path string) (identityRoute, bool) {
	for _, base := range []string{usersPath, usersPathV41} {
		rest, ok := strings.CutPrefix(path, strings.TrimSuffix(base, "/Users")+"/")
		if !ok {
			continue
		}
		res, id, _ := strings.Cut(rest, "/")
		id = strings.TrimSuffix(id, "/")
		switch {
		case res == resSchemas || res == resResourceTypes || res == resServiceProviderConfig:
			return identityRoute{base: base, kind: res, id: id}, true
		case res != "Users":
			return identityRoute{}, false
		case id == "":
			return identityRoute{base: base, kind: "list"}, true
		case id == searchSuffix[1:] && base == usersPathV41:
			return identityRoute{base: base, kind: "search"}, true
		}
		return identityRoute{base: base, kind: "user", id: id}, true
	}
	return identityRoute{}, false
}

// identityCall is one authenticated Identity request.
type identityCall struct {
	s       *Server
	route   identityRoute
	company string
	users   []*simUser
	allowed map[string]bool
	manager *simUser
	dcURL   string
}

// resource renders a user as this version shows it, before projection.
func (ic *identityCall) resource(u *simUser) map[string]any {
	return u.resource(ic.dcURL+ic.route.base, ic.manager)
}

func (ic *identityCall) render(u *simUser, proj projection) map[string]any {
	return proj.apply(ic.resource(u))
}

// handleUsers serves Identity v4 and v4.1: GET /Users[/], GET /Users/{id},
// and POST /profile/identity/v4.1/Users/.search.
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request, c *call) {
	rt, _ := parseIdentityPath(r.URL.Path)
	switch rt.kind {
	case resSchemas, resResourceTypes, resServiceProviderConfig:
		s.handleIdentityConfig(w, r, rt)
		return
	}
	method := http.MethodGet
	if rt.kind == "search" {
		method = http.MethodPost
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		scimError(w, http.StatusMethodNotAllowed, "", "method not allowed")
		return
	}
	tok, status := s.bearer(r)
	if tok == nil {
		s.writeUnauthorized(w, r, status)
		return
	}
	allowed := scopeAttributes(tok.scopes)
	if len(allowed) == 0 {
		// Undocumented; the gateway answers 403 for a missing scope (D-ER).
		writeGatewayError(w, http.StatusForbidden, "FORBIDDEN", "insufficient scope", r.URL.Path, s.Clock.Now())
		return
	}
	s.mu.Lock()
	users := s.usersLocked(tok.company)
	s.mu.Unlock()
	for _, k := range extraAttributeNames(users) {
		allowed[k] = true
	}
	ic := &identityCall{s: s, route: rt, company: tok.company, users: users, allowed: allowed, dcURL: c.dc.url}
	if len(users) > 0 {
		ic.manager = users[0]
	}
	switch {
	case rt.kind == "user":
		ic.getUser(w, r)
	case rt.kind == "search":
		ic.search(w, r)
	case rt.v41():
		ic.listV41(w, r)
	default:
		ic.listV4(w, r)
	}
}

// queryProjection reads attributes and excludedAttributes from the query.
func (ic *identityCall) queryProjection(w http.ResponseWriter, r *http.Request) (projection, bool) {
	q := r.URL.Query()
	return ic.projection(w, q.Get("attributes"), q.Get("excludedAttributes"))
}

func (ic *identityCall) projection(w http.ResponseWriter, attributes, excludedAttributes string) (projection, bool) {
	attrs, err := parseAttrList(attributes)
	if err == nil {
		var excluded []attrPath
		if excluded, err = parseAttrList(excludedAttributes); err == nil {
			return projection{allowed: ic.allowed, attrs: attrs, excluded: excluded}, true
		}
	}
	scimError(w, http.StatusBadRequest, "invalidValue", err.Error())
	return projection{}, false
}

func (ic *identityCall) getUser(w http.ResponseWriter, r *http.Request) {
	proj, ok := ic.queryProjection(w, r)
	if !ok {
		return
	}
	id := ic.route.id
	if !isUUID(id) {
		scimError(w, http.StatusBadRequest, "invalidValue", "Invalid user id ["+id+"]: not a UUID")
		return
	}
	for _, u := range ic.users {
		if strings.EqualFold(u.ID, id) {
			writeJSON(w, http.StatusOK, ic.render(u, proj))
			return
		}
	}
	scimError(w, http.StatusNotFound, "", "User not found: "+id)
}

// listV4 is GET /profile/identity/v4/Users: filter, startIndex, count.
func (ic *identityCall) listV4(w http.ResponseWriter, r *http.Request) {
	proj, ok := ic.queryProjection(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	match := func(*simUser) bool { return true }
	var err error
	if f := q.Get("filter"); f != "" {
		if match, err = parseFilter(f); err != nil {
			scimError(w, http.StatusBadRequest, "invalidFilter", err.Error())
			return
		}
		if ic.s.opts.RequireCompanyID && q.Get("companyId") == "" && strings.Contains(strings.ToLower(f), "employeenumber") {
			scimError(w, http.StatusBadRequest, "invalidValue", "companyId is required when filtering by employeeNumber")
			return
		}
	}
	start, err := intParam(q, "startIndex", 1)
	if err != nil {
		scimError(w, http.StatusBadRequest, "invalidValue", err.Error())
		return
	}
	count, err := intParam(q, "count", DefaultUserCount)
	if err != nil {
		scimError(w, http.StatusBadRequest, "invalidValue", err.Error())
		return
	}
	// RFC 7644 3.4.2.4: startIndex < 1 means 1, a negative count means 0;
	// Concur caps count at 100.
	start = max(start, 1)
	count = min(max(count, 0), MaxUserCount)
	var matched []*simUser
	for _, u := range ic.users {
		if match(u) && ic.inCompany(q.Get("companyId")) {
			matched = append(matched, u)
		}
	}
	resources := []any{}
	for i := start - 1; i < len(matched) && len(resources) < count; i++ {
		resources = append(resources, ic.render(matched[i], proj))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []any{SchemaListResponse},
		"totalResults": len(matched),
		"startIndex":   start,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	})
}

// inCompany applies the optional companyId parameter of the v4 list (both
// doc versions list it): the token only ever sees its own company.
func (ic *identityCall) inCompany(companyID string) bool {
	return companyID == "" || strings.EqualFold(companyID, ic.company)
}

func intParam(q map[string][]string, name string, def int) (int, error) {
	v := ""
	if vs := q[name]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &paramError{"Invalid value for " + name + " [" + v + "]"}
	}
	return n, nil
}

type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

// parseFilter accepts what Identity v4 supports: one of userName,
// employeeNumber, externalId compared with eq against a quoted string.
func parseFilter(f string) (func(*simUser) bool, error) {
	attr, rest, ok := strings.Cut(strings.TrimSpace(f), " ")
	if !ok {
		return nil, &paramError{"Invalid filter [" + f + "]"}
	}
	op, value, ok := strings.Cut(strings.TrimSpace(rest), " ")
	if !ok {
		return nil, &paramError{"Invalid filter [" + f + "]"}
	}
	if !strings.EqualFold(op, "eq") {
		return nil, &paramError{"Unsupported filter operator [" + op + "]"}
	}
	var want string
	if err := json.Unmarshal([]byte(strings.TrimSpace(value)), &want); err != nil {
		return nil, &paramError{"Invalid filter value in [" + f + "]"}
	}
	switch strings.ToLower(attr) {
	case "username", strings.ToLower(SchemaCoreUser) + ":username":
		// userName is case-insensitive in SCIM (caseExact false).
		return func(u *simUser) bool { return strings.EqualFold(u.UserName, want) }, nil
	case "employeenumber", strings.ToLower(SchemaEnterpriseUser) + ":employeenumber":
		return func(u *simUser) bool { return u.EmployeeNumber == want }, nil
	case "externalid", strings.ToLower(SchemaCoreUser) + ":externalid":
		return func(u *simUser) bool { return u.ExternalID == want }, nil
	}
	return nil, &paramError{"Unsupported filter attribute [" + attr + "]"}
}

// userSchema lists each top-level attribute with its sub-attributes, keyed
// by lower-case name (SCIM attribute names are case-insensitive).
func userSchema() map[string][]string {
	list := map[string][]string{
		"schemas": nil, "id": nil, "externalId": nil, "userName": nil, "active": nil,
		"displayName": nil, "nickName": nil, "title": nil, "preferredLanguage": nil,
		"timezone": nil, "dateOfBirth": nil, "gender": nil, "entitlements": nil,
		"emergencyContacts": nil,
		"name":              {"familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix", "familyNamePrefix", "formatted"},
		"emails":            {"value", "type", "primary", "verified", "notifications"},
		"phoneNumbers":      {"value", "type", "primary", "notifications"},
		"addresses":         {"type", "streetAddress", "locality", "region", "postalCode", "country", "primary"},
		"meta":              {"resourceType", "created", "lastModified", "version", "location"},
		"localeOverrides": {"preferenceDateFormat", "preferenceStartDayViewHour", "preferenceEndDayViewHour",
			"preferenceNegativeNumberFormat", "preferenceNegativeCurrencyFormat", "preferenceCurrencySymbolLocation",
			"preferenceFirstDayOfWeek", "preferenceDefaultCalView", "preference24Hour",
			"preferenceHourMinuteSeparator", "preferenceDistance", "preferenceNumberFormat"},
		SchemaEnterpriseUser: {"companyId", "employeeNumber", "costCenter", "department", "division",
			"orgUnit", "organization", "manager", "startDate", "terminationDate"},
		SchemaSAPUser: {"userUuid"},
	}
	out := make(map[string][]string, len(list)+1)
	for k, v := range list {
		out[strings.ToLower(k)] = append([]string{k}, v...) // [0] is the canonical name
	}
	return out
}

// attrPath is a parsed attribute reference: top-level key and optional sub-attribute.
type attrPath struct{ top, sub string }

// parseAttrList parses a comma list such as
// "userName,name.givenName,urn:...:enterprise:2.0:User:employeeNumber".
// Unknown names are a 400, like Concur's "Invalid attribute path [...]".
func parseAttrList(v string) ([]attrPath, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	schema := userSchema()
	var out []attrPath
	for _, raw := range strings.Split(v, ",") {
		path, err := parseAttr(schema, strings.TrimSpace(raw))
		if err != nil {
			return nil, err
		}
		out = append(out, path)
	}
	return out, nil
}

// parseAttr resolves one attribute name against the schema, spelt as the schema spells it.
func parseAttr(schema map[string][]string, p string) (attrPath, error) {
	bad := &paramError{"Invalid attribute path [" + p + "]"}
	top, sub, ok := splitAttr(strings.ToLower(p))
	if !ok {
		return attrPath{}, bad
	}
	entry, ok := schema[top]
	if !ok {
		return attrPath{}, bad
	}
	path := attrPath{top: entry[0]}
	if sub == "" {
		return path, nil
	}
	for _, s := range entry[1:] {
		if strings.EqualFold(s, sub) {
			path.sub = s
		}
	}
	if path.sub == "" {
		return attrPath{}, bad
	}
	return path, nil
}

// splitAttr splits a lower-cased name into attribute and sub-attribute: an
// extension schema URN with an optional ":attr", else a core name (its URN
// prefix optional) with an optional ".sub".
func splitAttr(lower string) (top, sub string, ok bool) {
	for _, urn := range []string{strings.ToLower(SchemaEnterpriseUser), strings.ToLower(SchemaSAPUser)} {
		if !strings.HasPrefix(lower, urn) {
			continue
		}
		sub = strings.TrimPrefix(strings.TrimPrefix(lower, urn), ":")
		if sub != "" && !strings.HasPrefix(lower, urn+":") {
			return "", "", false
		}
		return urn, sub, true
	}
	lower = strings.TrimPrefix(lower, strings.ToLower(SchemaCoreUser)+":")
	top, sub, _ = strings.Cut(lower, ".")
	return top, sub, true
}

// scopeAttributes maps the token's identity.user.*.read scopes to the
// top-level attributes they reveal (reference 7.2). Empty: no read scope.
func scopeAttributes(scopes []string) map[string]bool {
	byScope := map[string][]string{
		ScopeIdentityIDsRead: {"id", "userName", "externalId"},
		ScopeIdentityCoreRead: {"id", "active", "displayName", "name", "localeOverrides", "meta", "preferredLanguage",
			"timezone", "title", "nickName"},
		ScopeIdentityCoreSensitiveRead: {"id", "addresses", "emails", "phoneNumbers", "emergencyContacts",
			"dateOfBirth", "gender"},
		ScopeIdentityEnterpriseRead: {"id", SchemaEnterpriseUser, "entitlements"},
		ScopeIdentitySAPRead:        {"id", SchemaSAPUser},
	}
	allowed := map[string]bool{}
	for _, sc := range scopes {
		for _, a := range byScope[sc] {
			allowed[a] = true
		}
	}
	if len(allowed) > 0 {
		allowed["schemas"] = true
	}
	return allowed
}

// projection narrows a full user to what the token's scopes allow and the
// request's attributes/excludedAttributes ask for. id and schemas are
// always returned (SCIM "returned: always").
type projection struct {
	allowed         map[string]bool
	attrs, excluded []attrPath
}

func (p projection) apply(full map[string]any) map[string]any {
	visible := map[string]any{}
	for k, v := range full {
		if p.allowed[k] {
			visible[k] = v
		}
	}
	out := visible
	if len(p.attrs) > 0 {
		out = map[string]any{"id": visible["id"], "schemas": visible["schemas"]}
		for _, a := range p.attrs {
			v, ok := visible[a.top]
			if !ok {
				continue
			}
			if a.sub == "" {
				out[a.top] = v
				continue
			}
			out[a.top] = mergeSub(out[a.top], v, a.sub)
		}
	}
	for _, a := range p.excluded {
		if a.top == "id" || a.top == "schemas" {
			continue
		}
		if a.sub == "" {
			delete(out, a.top)
			continue
		}
		if v, ok := out[a.top]; ok {
			out[a.top] = dropSub(v, a.sub)
		}
	}
	return out
}

// mergeSub adds sub-attribute sub of src into dst (a partial copy of the
// same attribute built so far). Multi-valued attributes keep each element.
func mergeSub(dst, src any, sub string) any {
	switch sv := src.(type) {
	case map[string]any:
		d, _ := dst.(map[string]any)
		if d == nil {
			d = map[string]any{}
		}
		if v, ok := sv[sub]; ok {
			d[sub] = v
		}
		return d
	case []any:
		d, _ := dst.([]any)
		if d == nil {
			d = make([]any, len(sv))
		}
		for i, e := range sv {
			d[i] = mergeSub(d[i], e, sub)
		}
		return d
	}
	return src
}

// dropSub removes sub-attribute sub from a copy of v.
func dropSub(v any, sub string) any {
	switch vv := v.(type) {
	case map[string]any:
		cp := make(map[string]any, len(vv))
		for k, x := range vv {
			if k != sub {
				cp[k] = x
			}
		}
		return cp
	case []any:
		cp := make([]any, len(vv))
		for i, e := range vv {
			cp[i] = dropSub(e, sub)
		}
		return cp
	}
	return v
}
