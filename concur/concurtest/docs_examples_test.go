package concurtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// docsUsers is the directory size of the docs-examples simulator: more
// than one v4.1 page of 100.
const docsUsers = 150

// usersWhere counts the simulated users 1..docsUsers whose index satisfies
// keep (the generator derives every attribute from the index).
func usersWhere(keep func(i int) bool) int {
	n := 0
	for i := 1; i <= docsUsers; i++ {
		if keep(i) {
			n++
		}
	}
	return n
}

// docsExample is one request as written in Concur's reference pages, guides
// or SAP's sample clients (reference notes, section 1 and 7), and what the
// docs say comes back.
type docsExample struct {
	name    string
	source  string // where the example is written
	dc      string // data centre to send it to ("" -> the company's)
	method  string
	path    string
	header  map[string]string
	body    string // form or JSON, as the example writes it
	noToken bool
	status  int
	check   func(t *testing.T, r reply)
}

func listCheck(total, items int, wantNext bool) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		schemas, _ := r.body["schemas"].([]any)
		res, _ := r.body["Resources"].([]any)
		if len(schemas) != 1 || schemas[0] != SchemaListResponse || r.body["totalResults"] != float64(total) ||
			r.body["itemsPerPage"] != float64(items) || len(res) != items {
			t.Fatalf("want ListResponse total %d items %d, got %.300s", total, items, r.raw)
		}
		if _, has := r.body["nextCursor"]; has != wantNext {
			t.Fatalf("nextCursor present = %v, want %v", has, wantNext)
		}
	}
}

func refusedFilter(t *testing.T, r reply) {
	t.Helper()
	wantSCIMError(t, r, http.StatusBadRequest, "invalidFilter")
	wantMessages(t, r)
}

// wantMessages checks Concur's messages extension on a SCIM error (7.5).
func wantMessages(t *testing.T, r reply) {
	t.Helper()
	ext, _ := r.body[SchemaConcurError].(map[string]any)
	msgs, _ := ext["messages"].([]any)
	if len(msgs) == 0 {
		t.Fatalf("no %s messages in %s", SchemaConcurError, r.raw)
	}
	m, _ := msgs[0].(map[string]any)
	if m["code"] == "" || m["type"] != "error" {
		t.Fatalf("message %v lacks code or type error", m)
	}
}

func searchBody(filter string, extra string) string {
	b := `{"schemas":["` + SchemaSearchRequest + `"]`
	if filter != "" {
		b += `,"filter":` + fmt.Sprintf("%q", filter)
	}
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

func docsExamples(s *Server) []docsExample {
	// In this order: the bodies ask the simulator for request and refresh tokens as they are built.
	out := docsOAuthAndV4Examples(s)
	out = append(out, docsV41Examples(s)...)
	return append(out, docsSearchExamples(s)...)
}

// docsSample is user 7, John Backus: the user the examples look up.
func docsSample(s *Server) User {
	return s.Users(testCompany)[6]
}

// docsOAuthAndV4Examples: the token endpoint's documented grants and errors, and Identity v4.
func docsOAuthAndV4Examples(s *Server) []docsExample {
	sample := docsSample(s)
	form := "application/x-www-form-urlencoded"
	return []docsExample{
		{name: "tutorial 1 password grant", source: "S-T1 GetRefreshToken.js", method: http.MethodPost, path: "/oauth2/v0/token",
			header: map[string]string{"Content-Type": form}, noToken: true, status: 200,
			body: "client_id=" + testClient + "&client_secret=" + testSecret + "&grant_type=password&username=" + testCompany +
				"&password=" + s.NewRequestToken(testClient, testCompany) + "&credtype=authtoken",
			check: func(t *testing.T, r reply) {
				for _, k := range []string{"expires_in", "scope", "token_type", "access_token", "refresh_token",
					"refresh_expires_in", "geolocation", "id_token"} {
					if _, ok := r.body[k]; !ok {
						t.Errorf("no %s in %s", k, r.raw)
					}
				}
				if _, num := r.body["expires_in"].(float64); !num || r.body["geolocation"] != s.URLOf("us2") {
					t.Errorf("expires_in must be a number and geolocation us2: %s", r.raw)
				}
			}},
		{name: "company grant at the landing zone", source: "D-AUTH Base URIs for Obtaining a Token", dc: LandingZone,
			method: http.MethodPost, path: "/oauth2/v0/token", header: map[string]string{"Content-Type": form}, noToken: true, status: 200,
			body: url.Values{"client_id": {testClient}, "client_secret": {testSecret}, "grant_type": {"password"}, "username": {testCompany},
				"password": {s.NewRequestToken(testClient, testCompany)}, "credtype": {"authtoken"}}.Encode(),
			check: func(t *testing.T, r reply) {
				if r.body["geolocation"] != s.URLOf("us2") {
					t.Errorf("geolocation %v, want the company's data centre", r.body["geolocation"])
				}
			}},
		{name: "tutorial 3 refresh grant", source: "S-T3 CallingAPIs.js", method: http.MethodPost, path: "/oauth2/v0/token",
			header: map[string]string{"Content-Type": form}, noToken: true, status: 200,
			body: "client_id=" + testClient + "&client_secret=" + testSecret + "&grant_type=refresh_token&refresh_token=" +
				s.NewRefreshToken(testClient, testCompany),
			check: func(t *testing.T, r reply) {
				if r.body["access_token"] == nil {
					t.Errorf("no access_token: %s", r.raw)
				}
			}},
		{name: "own correlation id echoed", source: "D-GS curl example", method: http.MethodGet, path: usersPath,
			header: map[string]string{"concur-correlationid": "my-correlation-1234"}, status: 200,
			check: func(t *testing.T, r reply) {
				if r.header.Get("Concur-Correlationid") != "my-correlation-1234" {
					t.Errorf("correlation id %q", r.header.Get("Concur-Correlationid"))
				}
			}},
		{name: "tutorial 3 list with trailing slash", source: "S-T3 CallingAPIs.js, S-IMG successful-api-call.png",
			method: http.MethodGet, path: usersPath + "/", status: 200,
			check: func(t *testing.T, r reply) {
				listCheck(docsUsers, DefaultUserCount, false)(t, r)
				if r.body["startIndex"] != float64(1) {
					t.Errorf("startIndex %v", r.body["startIndex"])
				}
			}},
		{name: "v4 filter userName", source: "D-ID4", method: http.MethodGet,
			header: map[string]string{"Authorization": "BEARER {token}", "Accept": "application/json"},
			path:   usersPath + "?filter=" + url.QueryEscape(`userName eq "`+sample.UserName+`"`), status: 200, check: listCheck(1, 1, false)},
		{name: "v4 filter employeeNumber", source: "D-ID4", method: http.MethodGet,
			path:   usersPath + "?filter=" + url.QueryEscape(`employeeNumber eq "`+sample.EmployeeNumber+`"`),
			status: 200, check: listCheck(1, 1, false)},
		{name: "v4 list count=20", source: "D-ID4 Retrieve Users", method: http.MethodGet, path: usersPath + "?count=20", status: 200,
			check: listCheck(docsUsers, 20, false)},
		{name: "v4 filter employeeNumber with companyId", source: "D-ID4 parameters (companyId with employeeNumber)", method: http.MethodGet,
			path:   usersPath + "?companyId=" + testCompany + "&filter=" + url.QueryEscape(`employeeNumber eq "`+sample.EmployeeNumber+`"`),
			status: 200, check: listCheck(1, 1, false)},
		{name: "v4 filter with another company's companyId", source: "D-ID4 parameters (companyId)", method: http.MethodGet,
			path: usersPath + "?companyId=3df11695-e8bb-40ff-8e98-c85913ab2789&filter=" +
				url.QueryEscape(`employeeNumber eq "`+sample.EmployeeNumber+`"`),
			status: 200, check: listCheck(0, 0, false)},
		{name: "password grant, bad request token", source: "D-AUTH / D-COMP error example (code 5)", method: http.MethodPost,
			path: "/oauth2/v0/token", header: map[string]string{"Content-Type": form}, noToken: true, status: 400,
			body: url.Values{"client_id": {testClient}, "client_secret": {testSecret}, "grant_type": {"password"}, "username": {testCompany},
				"password": {"at-si86uekvgga2qj2i1bfj89juqgn"}, "credtype": {"authtoken"}}.Encode(),
			check: func(t *testing.T, r reply) { wantOAuthError(t, r, 400, "invalid_grant", CodeBadCredentials) }},
		{name: "password grant at another data centre", source: "D-ER / D-AUTH error example (code 16)", dc: "eu2", method: http.MethodPost,
			path: "/oauth2/v0/token", header: map[string]string{"Content-Type": form}, noToken: true, status: 400,
			body: url.Values{"client_id": {testClient}, "client_secret": {testSecret}, "grant_type": {"password"}, "username": {testCompany},
				"password": {s.NewRequestToken(testClient, testCompany)}, "credtype": {"authtoken"}}.Encode(),
			check: func(t *testing.T, r reply) {
				wantOAuthError(t, r, 400, "invalid_request", CodeWrongDataCenter)
				if r.body["geolocation"] != s.URLOf("us2") {
					t.Errorf("code 16 names %v, want us2", r.body["geolocation"])
				}
			}},
		{name: "refresh grant, bad refresh token", source: "D-ER error example (code 108)", method: http.MethodPost,
			path: "/oauth2/v0/token", header: map[string]string{"Content-Type": form}, noToken: true, status: 400,
			body: url.Values{"client_id": {testClient}, "client_secret": {testSecret}, "grant_type": {"refresh_token"},
				"refresh_token": {"8c844478-0000-4000-8000-000000000000"}}.Encode(),
			check: func(t *testing.T, r reply) {
				wantOAuthError(t, r, 400, "invalid_grant", CodeBadRefreshToken)
				if r.body["geolocation"] == nil || r.body["concur-correlationid"] == nil {
					t.Errorf("the documented 108 body carries geolocation and concur-correlationid: %s", r.raw)
				}
			}},
		{name: "token request as JSON", source: "D-AUTH (code 135, form bodies only)", method: http.MethodPost, path: "/oauth2/v0/token",
			header: map[string]string{"Content-Type": "application/json"}, noToken: true, status: 400,
			body:  `{"client_id":"` + testClient + `","grant_type":"refresh_token"}`,
			check: func(t *testing.T, r reply) { wantOAuthError(t, r, 400, "invalid_request", CodeUnsupportedFormat) }},
		{name: "v4 user by UUID", source: "D-ID4", method: http.MethodGet, path: usersPath + "/" + sample.ID, status: 200,
			check: func(t *testing.T, r reply) {
				meta, _ := r.body["meta"].(map[string]any)
				if r.body["id"] != sample.ID || meta["location"] != s.URLOf("us2")+usersPath+"/"+sample.ID {
					t.Errorf("user %.200s", r.raw)
				}
			}},
		{name: "v4 invalid attribute path", source: "D-SW4 ErrorResponse example", method: http.MethodGet, path: usersPath + "?attributes=:test",
			status: 400, check: func(t *testing.T, r reply) {
				wantSCIMError(t, r, 400, "invalidValue")
				wantMessages(t, r)
				if !strings.Contains(r.body["detail"].(string), "Invalid attribute path [:test]") {
					t.Errorf("detail %v", r.body["detail"])
				}
			}},
	}
}

// docsV41Examples: Identity v4.1 lists and users.
func docsV41Examples(s *Server) []docsExample {
	sample := docsSample(s)
	return []docsExample{
		{name: "v4.1 list", source: "D-ID41 Retrieve Users", method: http.MethodGet, path: usersPathV41,
			header: map[string]string{"Accept": "application/json"},
			status: 200, check: func(t *testing.T, r reply) {
				listCheck(docsUsers, DefaultUserCountV41, true)(t, r)
				if _, has := r.body["startIndex"]; has {
					t.Errorf("the reference's v4.1 list answer has no startIndex: %.200s", r.raw)
				}
			}},
		{name: "v4.1 list count=20", source: "D-ID41 Retrieve Users", method: http.MethodGet, path: usersPathV41 + "?count=20", status: 200,
			check: listCheck(docsUsers, 20, true)},
		{name: "v4.1 list attributes", source: "D-ID41 Retrieve Users", method: http.MethodGet,
			path:   usersPathV41 + "?attributes=id,active,emails",
			status: 200, check: func(t *testing.T, r reply) {
				u := r.body["Resources"].([]any)[0].(map[string]any)
				for k := range u {
					if k != "id" && k != "active" && k != "emails" && k != "schemas" {
						t.Errorf("attribute %s returned", k)
					}
				}
			}},
		{name: "v4.1 user by UUID", source: "D-ID41", method: http.MethodGet, path: usersPathV41 + "/" + sample.ID, status: 200,
			check: func(t *testing.T, r reply) {
				meta, _ := r.body["meta"].(map[string]any)
				if meta["location"] != s.URLOf("us2")+usersPathV41+"/"+sample.ID {
					t.Errorf("meta.location %v does not echo v4.1", meta["location"])
				}
			}},
	}
}

// docsSearchExamples: v4.1 .search with the documented filters, and the simulator's documented limits.
func docsSearchExamples(s *Server) []docsExample {
	john := usersWhere(func(i int) bool { return i%11 == 7 }) // the generator's givenName "John"
	active := usersWhere(func(i int) bool { return i%7 != 0 })
	sample := docsSample(s)
	johnBackus := usersWhere(func(i int) bool { return i%11 == 7 && i%13 == 7 })
	adaLovelace := usersWhere(func(i int) bool { return i%11 == 0 && i%13 == 0 })
	search := usersPathV41 + searchSuffix
	v41 := map[string]string{"Accept": "application/json", "Content-Type": "application/json"}
	sr := func(name, filter, extra string, status int, check func(*testing.T, reply)) docsExample {
		return docsExample{name: name, source: "D-SRCH", method: http.MethodPost, path: search, header: v41,
			body: searchBody(filter, extra), status: status, check: check}
	}
	return []docsExample{
		sr("search active, attributes active", "active eq true", `"attributes":["active"]`, 200, listCheck(active, DefaultUserCountV41, true)),
		sr("search without filter", "", `"attributes":["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:companyId"]`, 200,
			func(t *testing.T, r reply) {
				listCheck(docsUsers, DefaultUserCountV41, true)(t, r)
				u := r.body["Resources"].([]any)[0].(map[string]any)
				ent, _ := u[SchemaEnterpriseUser].(map[string]any)
				if len(ent) != 1 || ent["companyId"] != testCompany || r.body["startIndex"] != float64(1) {
					t.Errorf("resource %v", u)
				}
			}),
		sr("search excludedAttributes", "", `"excludedAttributes":["localeOverrides","name.familyNamePrefix","`+SchemaEnterpriseUser+`"]`, 200,
			func(t *testing.T, r reply) {
				u := r.body["Resources"].([]any)[0].(map[string]any)
				name, _ := u["name"].(map[string]any)
				_, loc := u["localeOverrides"]
				_, ent := u[SchemaEnterpriseUser]
				_, fnp := name["familyNamePrefix"]
				if loc || ent || fnp || name["givenName"] == nil {
					t.Errorf("excludedAttributes not applied: %v", u)
				}
			}),
		sr("search by UUID unquoted", "id eq "+sample.ID, "", 200, listCheck(1, 1, false)),
		sr("search by UUID quoted", `id eq "`+sample.ID+`"`, "", 200, listCheck(1, 1, false)),
		sr("search active, count 1000", "active eq true", `"count":1000`, 200, listCheck(active, active, false)),
		sr("search emails grouping", `emails[type eq "work" and value ew ".example"]`, "", 200, listCheck(docsUsers, DefaultUserCountV41, true)),
		sr("search emails grouping or at root", `emails[type eq "work" or value sw "admin" or verified eq false]`, "", 200,
			listCheck(docsUsers, DefaultUserCountV41, true)),
		sr("search addresses grouping or", `addresses[type eq "work" or type eq "home"]`, "", 200, listCheck(0, 0, false)),
		sr("search emails combined", `emails[type eq "work" and value ew "@SAP.com" or type eq "home" and value ew ".com"]`, "", 200,
			listCheck(0, 0, false)),
		sr("search across values", `emails.value ew "@concur.com" and emails.value ew "@sap.com"`, "", 200, listCheck(0, 0, false)),
		sr("search addresses across values", `addresses.type eq "home" and addresses.type eq "work"`, "", 200, listCheck(0, 0, false)),
		sr("search name.givenName", `name.givenName eq "John"`, `"count":100`, 200, listCheck(john, john, false)),
		sr("search full name", `name.givenName eq "John" and name.familyName eq "Backus"`, "", 200,
			listCheck(johnBackus, johnBackus, false)),
		sr("search name grouping", `name[givenName eq "John" and familyName eq "Backus"]`, "", 200,
			listCheck(johnBackus, johnBackus, false)),
		sr("search ne and not", `name.givenName ne "John" and not(name.givenName eq "Bob")`, `"count":1000`, 200,
			listCheck(docsUsers-john, docsUsers-john, false)),
		sr("search single-valued grouping takes ne and not", `name[givenName ne "John" and not(givenName eq "Bob")]`, `"count":1000`, 200,
			listCheck(docsUsers-john, docsUsers-john, false)),
		sr("search sw and ew, any case", `name.givenName sw "j" and name.givenName ew "N"`, `"count":1000`, 200,
			listCheck(john, john, false)),
		sr("search single-valued grouping takes duplicates", `name[givenName sw "J" and givenName ew "n"]`, `"count":1000`, 200,
			listCheck(john, john, false)),
		sr("search co and pr", `not(name.givenName co "admin") and name.givenName pr`, `"count":1000`, 200,
			listCheck(docsUsers, docsUsers, false)),
		sr("search combined or of groupings",
			`name[givenName eq "John" and familyName eq "Smith"] or name[givenName eq "Ada" and familyName eq "Lovelace"]`,
			`"count":1000`, 200, listCheck(adaLovelace, adaLovelace, false)),
		sr("search dates", `meta.lastModified gt "2011-05-13T04:42:34Z"`, `"count":1000`, 200, listCheck(docsUsers, docsUsers, false)),
		sr("limit: not in a multi-valued grouping", `emails[not(type eq "work")]`, "", 400, refusedFilter),
		sr("limit: ne in a multi-valued grouping", `addresses[type ne "work"]`, "", 400, refusedFilter),
		sr("limit: or nested in a multi-valued grouping", `emails[value ew "@sap.com" and (type eq "home" or type eq "work")]`, "",
			400, refusedFilter),
		sr("limit: duplicate attribute in a multi-valued grouping", `emails[value ew "@concur.com" and value ew "@sap.com"]`, "",
			400, refusedFilter),
		sr("limit: duplicate attribute, sw and ew", `emails[value sw "C" and value ew "S"]`, "", 400, refusedFilter),
		{name: "search without schemas", source: "D-SRCH (schemas is required)", method: http.MethodPost, path: search, header: v41,
			body: `{"filter":"active eq true"}`, status: 400, check: func(t *testing.T, r reply) { wantMessages(t, r) }},
	}
}

// TestDocsExamples sends every request example of Concur's Identity v4,
// v4.1 and OAuth2 reference pages, the v4.1 search guide and SAP's sample
// clients (as recorded in the reference notes) and checks the documented
// answer.
func TestDocsExamples(t *testing.T) {
	s := newSim(t, Options{DataCenters: []string{LandingZone, "us2", "eu2"}, Users: docsUsers})
	token := accessTokenFor(t, s)
	for _, ex := range docsExamples(s) {
		t.Run(ex.name, func(t *testing.T) {
			dc := ex.dc
			if dc == "" {
				dc = "us2"
			}
			var body *strings.Reader
			if ex.body != "" {
				body = strings.NewReader(ex.body)
			} else {
				body = strings.NewReader("")
			}
			req, _ := http.NewRequestWithContext(context.Background(), ex.method, s.URLOf(dc)+ex.path, body)
			if !ex.noToken {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			for k, v := range ex.header {
				req.Header.Set(k, strings.ReplaceAll(v, "{token}", token))
			}
			r := do(t, s.Client(), req)
			if r.status != ex.status {
				t.Fatalf("%s (%s): HTTP %d %.400s, want %d", ex.name, ex.source, r.status, r.raw, ex.status)
			}
			if ex.check != nil {
				ex.check(t, r)
			}
		})
	}
}

// TestV41CursorPaging walks the whole directory page by page, as the search
// guide's Pagination section describes, and checks that a cursor belongs to
// its query.
func TestV41CursorPaging(t *testing.T) {
	s := newSim(t, Options{Users: docsUsers})
	token := accessTokenFor(t, s)
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := usersPathV41 + "?count=40"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := get(t, s, path, token)
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.raw)
		}
		pages++
		for _, u := range r.body["Resources"].([]any) {
			id := u.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("user %s on two pages", id)
			}
			seen[id] = true
		}
		next, _ := r.body["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != docsUsers || pages != 4 {
		t.Fatalf("%d users in %d pages, want %d in 4", len(seen), pages, docsUsers)
	}
	// A cursor of the unfiltered list does not fit a filtered search.
	r := postJSONBody(t, s, usersPathV41+searchSuffix, token, searchBody("active eq true", fmt.Sprintf("%q:%q", "cursor", cursor)))
	wantSCIMError(t, r, 400, "invalidValue")
	wantSCIMError(t, get(t, s, usersPathV41+"?cursor=not-a-cursor", token), 400, "invalidValue")
	wantSCIMError(t, get(t, s, usersPathV41+"?startIndex=2", token), 400, "invalidValue")
	wantSCIMError(t, get(t, s, usersPathV41+"?filter="+url.QueryEscape(`userName eq "x"`), token), 400, "invalidValue")
	if r := get(t, s, usersPathV41+"?count=5000", token); r.body["itemsPerPage"] != float64(docsUsers) {
		t.Errorf("count above 1000 is capped at 1000: itemsPerPage %v", r.body["itemsPerPage"])
	}
	// Search pages carry startIndex and a cursor of their own.
	r = postJSONBody(t, s, usersPathV41+searchSuffix, token, searchBody("active eq true", `"count":50`))
	next, _ := r.body["nextCursor"].(string)
	r = postJSONBody(t, s, usersPathV41+searchSuffix, token, searchBody("active eq true", fmt.Sprintf(`"count":50,"cursor":%q`, next)))
	if r.status != 200 || r.body["startIndex"] != float64(51) {
		t.Fatalf("second search page: %d %.300s", r.status, r.raw)
	}
}

func postJSONBody(t *testing.T, s *Server, path, token, body string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return do(t, s.Client(), req)
}

func TestSearchMethodAndScopes(t *testing.T) {
	s := newSim(t, Options{Users: 3})
	token := accessTokenFor(t, s)
	if r := get(t, s, usersPathV41+searchSuffix, token); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
		t.Errorf("GET .search: %d allow %q", r.status, r.header.Get("Allow"))
	}
	if r := postJSONBody(t, s, usersPath+searchSuffix, token, searchBody("", "")); r.status != http.StatusMethodNotAllowed {
		t.Errorf("v4 has no .search (it is a user id there): %d %s", r.status, r.raw)
	}
	// A filter cannot see attributes the token's scopes hide.
	s.AddClient(testClient, testSecret, ScopeIdentityIDsRead)
	ids := accessTokenFor(t, s)
	r := postJSONBody(t, s, usersPathV41+searchSuffix, ids, searchBody(`name.givenName pr`, ""))
	if r.status != 200 || r.body["totalResults"] != float64(0) {
		t.Errorf("filter on a hidden attribute matched: %d %.200s", r.status, r.raw)
	}
}

// The v4 reference marks companyId required with employeeNumber; both
// readings are modelled (RequireCompanyID).
func TestEmployeeNumberFilterCompanyIDReadings(t *testing.T) {
	for _, strict := range []bool{false, true} {
		s := newSim(t, Options{Users: 3, RequireCompanyID: strict})
		token := accessTokenFor(t, s)
		filter := "filter=" + url.QueryEscape(`employeeNumber eq "`+s.Users(testCompany)[0].EmployeeNumber+`"`)
		alone := get(t, s, usersPath+"?"+filter, token)
		if strict {
			wantSCIMError(t, alone, 400, "invalidValue")
		} else if alone.status != 200 || alone.body["totalResults"] != float64(1) {
			t.Errorf("lenient: employeeNumber alone: %d %s", alone.status, alone.raw)
		}
		if r := get(t, s, usersPath+"?companyId="+testCompany+"&"+filter, token); r.status != 200 || r.body["totalResults"] != float64(1) {
			t.Errorf("strict=%v: with companyId: %d %s", strict, r.status, r.raw)
		}
	}
}
