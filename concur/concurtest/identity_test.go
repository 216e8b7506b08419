package concurtest

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestUsersDeterministic(t *testing.T) {
	s1 := newSim(t, Options{})
	s2 := newSim(t, Options{Users: 3})
	a, b := s1.Users(testCompany), s2.Users(testCompany)
	if len(a) != DefaultUsers || len(b) != 3 {
		t.Fatalf("counts %d %d", len(a), len(b))
	}
	if !reflect.DeepEqual(a[:3], b) {
		t.Fatalf("users differ between servers: %v vs %v", a[:3], b)
	}
	u := a[6]
	if !isUUID(u.ID) || u.UserName != "user0007@aa076ada.example" || u.EmployeeNumber != "100007" || u.ExternalID != "ext-aa076ada-0007" {
		t.Errorf("user 7 = %+v", u)
	}
	seen := map[string]bool{}
	for _, u := range a {
		if seen[u.ID] {
			t.Fatalf("duplicate id %s", u.ID)
		}
		seen[u.ID] = true
	}
	if other := s1.Users("3df11695-e8bb-40ff-8e98-c85913ab2789"); other[0].ID == a[0].ID {
		t.Error("users of different companies share ids")
	}
}

func TestGetUserFullShape(t *testing.T) {
	s := newSim(t, Options{})
	tok := accessTokenFor(t, s)
	u := s.Users(testCompany)[1]
	r := get(t, s, usersPath+"/"+u.ID, tok)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Concur-Correlationid") == "" {
		t.Fatalf("get user: %d %v %s", r.status, r.header, r.raw)
	}
	b := r.body
	if b["id"] != u.ID || b["userName"] != u.UserName || b["externalId"] != u.ExternalID || b["active"] != true {
		t.Errorf("ids: %s", r.raw)
	}
	schemas, _ := b["schemas"].([]any)
	if len(schemas) != 3 || schemas[0] != SchemaCoreUser {
		t.Errorf("schemas = %v", b["schemas"])
	}
	name, _ := b["name"].(map[string]any)
	if v, ok := name["familyNamePrefix"]; !ok || v != nil {
		t.Errorf("name should carry explicit nulls: %v", name)
	}
	for _, k := range []string{"nickName", "emergencyContacts", "dateOfBirth"} {
		if v, ok := b[k]; !ok || v != nil {
			t.Errorf("%s should be present as null", k)
		}
	}
	emails, _ := b["emails"].([]any)
	if len(emails) != 1 || emails[0].(map[string]any)["value"] != u.UserName {
		t.Errorf("emails = %v", b["emails"])
	}
	meta, _ := b["meta"].(map[string]any)
	if meta["location"] != s.URL+usersPath+"/"+u.ID || meta["resourceType"] != "User" {
		t.Errorf("meta = %v", meta)
	}
	ent, _ := b[SchemaEnterpriseUser].(map[string]any)
	if ent["companyId"] != testCompany || ent["employeeNumber"] != u.EmployeeNumber {
		t.Errorf("enterprise = %v", ent)
	}
	if mgr, _ := ent["manager"].(map[string]any); mgr["value"] != s.Users(testCompany)[0].ID {
		t.Errorf("manager = %v", ent["manager"])
	}
	if sap, _ := b[SchemaSAPUser].(map[string]any); !isUUID(sap["userUuid"].(string)) {
		t.Errorf("sap = %v", sap)
	}
	if lo, _ := b["localeOverrides"].(map[string]any); lo["preferenceStartDayViewHour"] != float64(8) {
		t.Errorf("localeOverrides = %v", lo)
	}
	// Users are company-scoped and case-insensitive by id.
	if r := get(t, s, usersPath+"/"+strings.ToUpper(u.ID), tok); r.status != 200 {
		t.Errorf("upper-case id: %d", r.status)
	}
}

func TestIdentityScopes(t *testing.T) {
	cases := []struct {
		scopes []string
		want   []string
	}{
		{[]string{ScopeIdentityIDsRead}, []string{"externalId", "id", "schemas", "userName"}},
		{[]string{ScopeIdentityCoreRead}, []string{
			"active", "displayName", "id", "localeOverrides", "meta", "name", "nickName", "preferredLanguage", "schemas", "timezone", "title",
		}},
		{[]string{ScopeIdentityCoreSensitiveRead}, []string{
			"addresses", "dateOfBirth", "emails", "emergencyContacts", "gender", "id", "phoneNumbers", "schemas",
		}},
		{[]string{ScopeIdentityEnterpriseRead}, []string{"entitlements", "id", "schemas", SchemaEnterpriseUser}},
		{[]string{ScopeIdentitySAPRead, ScopeOpenID}, []string{"id", "schemas", SchemaSAPUser}},
	}
	for _, tc := range cases {
		s := newSim(t, Options{})
		s.AddClient(testClient, testSecret, tc.scopes...)
		tok := accessTokenFor(t, s)
		r := get(t, s, usersPath+"/"+s.Users(testCompany)[0].ID, tok)
		if r.status != 200 {
			t.Fatalf("%v: %d %s", tc.scopes, r.status, r.raw)
		}
		got := keys(r.body)
		want := append([]string(nil), tc.want...)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("scopes %v: keys %v, want %v", tc.scopes, got, want)
		}
	}

	// No identity read scope at all: 403.
	s := newSim(t, Options{})
	s.AddClient(testClient, testSecret, ScopeOpenID, "expense.report.read")
	tok := accessTokenFor(t, s)
	if r := get(t, s, usersPath, tok); r.status != http.StatusForbidden || r.header.Get("Concur-Correlationid") == "" {
		t.Errorf("no scope: %d %s", r.status, r.raw)
	}
}

func TestAttributesProjection(t *testing.T) {
	s := newSim(t, Options{})
	tok := accessTokenFor(t, s)
	id := s.Users(testCompany)[3].ID
	q := url.Values{"attributes": {"userName,name.givenName,emails.value," + SchemaEnterpriseUser + ":employeeNumber"}}
	r := get(t, s, usersPath+"/"+id+"?"+q.Encode(), tok)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	want := []string{"emails", "id", "name", "schemas", "userName", SchemaEnterpriseUser}
	sort.Strings(want)
	if got := keys(r.body); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if got := keys(r.body["name"].(map[string]any)); !reflect.DeepEqual(got, []string{"givenName"}) {
		t.Errorf("name = %v", got)
	}
	if got := keys(r.body["emails"].([]any)[0].(map[string]any)); !reflect.DeepEqual(got, []string{"value"}) {
		t.Errorf("emails[0] = %v", got)
	}
	if got := keys(r.body[SchemaEnterpriseUser].(map[string]any)); !reflect.DeepEqual(got, []string{"employeeNumber"}) {
		t.Errorf("enterprise = %v", got)
	}

	// excludedAttributes drops, but never id.
	q = url.Values{"excludedAttributes": {"id,meta,name.givenName," + SchemaSAPUser}}
	r = get(t, s, usersPath+"/"+id+"?"+q.Encode(), tok)
	if r.body["id"] != id || r.body["meta"] != nil || r.body[SchemaSAPUser] != nil {
		t.Errorf("excluded: %s", r.raw)
	}
	if _, has := r.body["name"].(map[string]any)["givenName"]; has {
		t.Error("name.givenName not excluded")
	}

	// A requested attribute outside the token's scopes is silently absent.
	s.AddClient(testClient, testSecret, ScopeIdentityIDsRead)
	tok = accessTokenFor(t, s)
	r = get(t, s, usersPath+"/"+id+"?attributes=userName,emails", tok)
	if got := keys(r.body); !reflect.DeepEqual(got, []string{"id", "schemas", "userName"}) {
		t.Errorf("out-of-scope projection: %v", got)
	}

	// Unknown attribute names are a SCIM 400.
	r = get(t, s, usersPath+"/"+id+"?attributes=userName,bogus", tok)
	wantSCIMError(t, r, 400, "invalidValue")
}

func wantSCIMError(t *testing.T, r reply, status int, scimType string) {
	t.Helper()
	schemas, _ := r.body["schemas"].([]any)
	if r.status != status || len(schemas) == 0 || schemas[0] != SchemaError || r.body["status"] != strconv.Itoa(status) {
		t.Fatalf("got %d %s, want SCIM error %d", r.status, r.raw, status)
	}
	if scimType != "" && r.body["scimType"] != scimType {
		t.Fatalf("scimType = %v, want %s", r.body["scimType"], scimType)
	}
	if d, _ := r.body["detail"].(string); d == "" {
		t.Fatalf("no detail: %s", r.raw)
	}
	if r.header.Get("Concur-Correlationid") == "" {
		t.Fatal("no correlation id")
	}
}

func TestUserErrors(t *testing.T) {
	s := newSim(t, Options{})
	tok := accessTokenFor(t, s)
	wantSCIMError(t, get(t, s, usersPath+"/00000000-0000-4000-8000-000000000000", tok), 404, "")
	wantSCIMError(t, get(t, s, usersPath+"/not-a-uuid", tok), 400, "invalidValue")
	// A user of another company is not visible.
	other := s.Users("3df11695-e8bb-40ff-8e98-c85913ab2789")[0].ID
	wantSCIMError(t, get(t, s, usersPath+"/"+other, tok), 404, "")

	for _, f := range []string{`userName ne "x"`, `title eq "x"`, `userName eq x`, `userName`, `userName eq "a" and externalId eq "b"`} {
		wantSCIMError(t, get(t, s, usersPath+"?filter="+url.QueryEscape(f), tok), 400, "invalidFilter")
	}
	wantSCIMError(t, get(t, s, usersPath+"?count=ten", tok), 400, "invalidValue")
	wantSCIMError(t, get(t, s, usersPath+"?startIndex=x", tok), 400, "invalidValue")
}

func TestIdentityUnauthorized(t *testing.T) {
	for _, status := range []int{0, http.StatusForbidden} {
		s := newSim(t, Options{UnauthorizedStatus: status})
		want := status
		if want == 0 {
			want = http.StatusUnauthorized
		}
		if r := get(t, s, usersPath, ""); r.status != 401 || r.header.Get("Concur-Correlationid") == "" {
			t.Errorf("missing bearer: %d", r.status)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+usersPath, nil)
		req.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
		if r := do(t, s.Client(), req); r.status != 401 {
			t.Errorf("basic auth: %d", r.status)
		}
		if r := get(t, s, usersPath, "garbage"); r.status != want || r.body["httpStatus"] == nil {
			t.Errorf("bad bearer: %d %s, want %d", r.status, r.raw, want)
		}
		tok := accessTokenFor(t, s)
		// The docs write BEARER in capitals; accept any case.
		req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+usersPath, nil)
		req.Header.Set("Authorization", "BEARER "+tok)
		if r := do(t, s.Client(), req); r.status != 200 {
			t.Errorf("BEARER: %d", r.status)
		}
		s.Clock.Advance(time.Hour - time.Second)
		if r := get(t, s, usersPath, tok); r.status != 200 {
			t.Errorf("before expiry: %d", r.status)
		}
		s.Clock.Advance(time.Second)
		if r := get(t, s, usersPath, tok); r.status != want {
			t.Errorf("expired bearer: %d, want %d", r.status, want)
		}
	}
}

func TestListPaging(t *testing.T) {
	s := newSim(t, Options{Users: 130})
	tok := accessTokenFor(t, s)
	all := s.Users(testCompany)

	r := get(t, s, usersPath, tok)
	res, _ := r.body["Resources"].([]any)
	if r.status != 200 || r.body["totalResults"] != float64(130) || r.body["startIndex"] != float64(1) ||
		r.body["itemsPerPage"] != float64(10) || len(res) != 10 {
		t.Fatalf("default page: %d %v %v %v %d", r.status, r.body["totalResults"], r.body["startIndex"], r.body["itemsPerPage"], len(res))
	}
	if s := r.body["schemas"].([]any); s[0] != SchemaListResponse {
		t.Errorf("schemas = %v", s)
	}
	if res[0].(map[string]any)["id"] != all[0].ID {
		t.Error("first page should start with the first user")
	}

	r = get(t, s, usersPath+"?count=500", tok)
	if len(r.body["Resources"].([]any)) != MaxUserCount || r.body["itemsPerPage"] != float64(100) {
		t.Errorf("count capped at 100: %v", r.body["itemsPerPage"])
	}

	r = get(t, s, usersPath+"?startIndex=121&count=20", tok)
	res = r.body["Resources"].([]any)
	if len(res) != 10 || r.body["startIndex"] != float64(121) || res[0].(map[string]any)["id"] != all[120].ID {
		t.Errorf("last page: %d items, startIndex %v", len(res), r.body["startIndex"])
	}

	r = get(t, s, usersPath+"?startIndex=500", tok)
	if res, ok := r.body["Resources"].([]any); !ok || len(res) != 0 || r.body["totalResults"] != float64(130) {
		t.Errorf("beyond the end: %s", r.raw)
	}
	r = get(t, s, usersPath+"?startIndex=0&count=0", tok)
	if r.body["startIndex"] != float64(1) || r.body["itemsPerPage"] != float64(0) {
		t.Errorf("count=0: %s", r.raw)
	}
}

func TestListFilter(t *testing.T) {
	s := newSim(t, Options{})
	tok := accessTokenFor(t, s)
	u := s.Users(testCompany)[4]
	for _, f := range []string{
		`userName eq "` + u.UserName + `"`,
		`USERNAME eq "` + strings.ToUpper(u.UserName) + `"`,
		`employeeNumber eq "` + u.EmployeeNumber + `"`,
		SchemaEnterpriseUser + `:employeeNumber eq "` + u.EmployeeNumber + `"`,
		`externalId EQ "` + u.ExternalID + `"`,
	} {
		r := get(t, s, usersPath+"?filter="+url.QueryEscape(f)+"&attributes=userName", tok)
		res, _ := r.body["Resources"].([]any)
		if r.status != 200 || r.body["totalResults"] != float64(1) || r.body["itemsPerPage"] != float64(1) || len(res) != 1 ||
			res[0].(map[string]any)["id"] != u.ID {
			t.Errorf("filter %s: %d %s", f, r.status, r.raw)
		}
	}
	r := get(t, s, usersPath+"?filter="+url.QueryEscape(`userName eq "nobody@x"`), tok)
	if r.status != 200 || r.body["totalResults"] != float64(0) || len(r.body["Resources"].([]any)) != 0 {
		t.Errorf("no match: %s", r.raw)
	}
	if s.Calls(EndpointUsers) != 6 {
		t.Errorf("Calls(users) = %d", s.Calls(EndpointUsers))
	}
}
