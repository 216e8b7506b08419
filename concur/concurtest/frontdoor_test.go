package concurtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestFrontDoorPath(t *testing.T) {
	for in, want := range map[string]string{
		"//profile/identity/v4/users/3DF11695-e8bb":  "/profile/identity/v4/Users/3DF11695-e8bb",
		"/PROFILE//Identity/V4.1/USERS/.SEARCH":      "/profile/identity/v4.1/Users/.search",
		"/profile/identity/v4/schemas/":              "/profile/identity/v4/Schemas/",
		"/profile/identity/v4/Schemas/urn:x:User":    "/profile/identity/v4/Schemas/urn:x:User",
		"/profile/identity/v4/users/users":           "/profile/identity/v4/Users/users",
		"///OAuth2/V0/Token":                         "/oauth2/v0/token",
		"/_sim//users":                               "/_sim/users",
		"/spend/v4/Users/":                           "/spend/v4/Users/",
		"/":                                          "/",
		"/profile/identity/v4/serviceproviderconfig": "/profile/identity/v4/ServiceProviderConfig",
	} {
		if got := frontDoorPath(in); got != want {
			t.Errorf("frontDoorPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// sapSearch posts a SearchRequest body as SAP's collection does.
func sapSearch(t *testing.T, s *Server, path, bearer, body string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	return do(t, s.Client(), req)
}

// The request shapes of SAP's user-provisioning Postman collection (lower-case
// users, a root with a trailing slash, Schemas/, bare dates in search
// filters) are answered over HTTPS as the documented resources; what the
// simulator does not model is a gateway 404 that says so.
func TestSAPCollectionRequestShapes(t *testing.T) {
	s := newSim(t, Options{TLS: true})
	tok := accessTokenFor(t, s)
	u := s.Users(testCompany)[2]
	for _, tc := range []struct {
		path string
		want func(reply) bool
	}{
		{"//profile/identity/v4/users/" + u.ID, func(r reply) bool { return r.body["id"] == u.ID }},
		{"/profile/identity/v4/users/" + u.ID, func(r reply) bool { return r.body["id"] == u.ID }},
		{"//profile/identity/v4/users?count=100", func(r reply) bool { return r.body["itemsPerPage"] == float64(DefaultUsers) }},
		{`//profile/identity/v4/Users?filter=externalId%20eq%20%22` + u.ExternalID + `%22`,
			func(r reply) bool { return r.body["totalResults"] == float64(1) }},
		{"/PROFILE/IDENTITY/V4/USERS/" + u.ID, func(r reply) bool { return r.body["id"] == u.ID }},
		{"//profile/identity/v4/Schemas/", func(r reply) bool {
			res, _ := r.body["Resources"].([]any)
			first, _ := res[0].(map[string]any)
			return len(res) == 3 && first["id"] == SchemaCoreUser && first["attributes"] != nil
		}},
		{"/profile/identity/v4.1/Schemas/" + SchemaEnterpriseUser, func(r reply) bool { return r.body["id"] == SchemaEnterpriseUser }},
		{"/profile/identity/v4/ResourceTypes/", func(r reply) bool {
			res, _ := r.body["Resources"].([]any)
			return len(res) == 1 && res[0].(map[string]any)["endpoint"] == "/Users"
		}},
		{"/profile/identity/v4.1/ServiceProviderConfig/", func(r reply) bool {
			f, _ := r.body["filter"].(map[string]any)
			return f["supported"] == true && f["maxResults"] == float64(MaxUserCountV41)
		}},
	} {
		r := get(t, s, tc.path, tok)
		if r.status != http.StatusOK || !tc.want(r) {
			t.Errorf("GET %s: %d %.300s", tc.path, r.status, r.raw)
		}
	}
	for body, want := range map[string]float64{
		`{"schemas":["` + SchemaSearchRequest + `"]}`: DefaultUsers,
		`{"schemas":["` + SchemaSearchRequest + `"],"filter":"active eq true and emails.value ew \"@` +
			strings.SplitN(u.UserName, "@", 2)[1] + `\""}`: float64(DefaultUsers - DefaultUsers/7),
		`{"schemas":["` + SchemaSearchRequest + `"],"filter":"active eq true and ` + SchemaEnterpriseUser +
			`:startDate le 2018-12-31","attributes":["active","` + SchemaEnterpriseUser + `:startDate"]}`: 0,
	} {
		r := sapSearch(t, s, "//profile/identity/v4.1/Users/.search", tok, body)
		if r.status != http.StatusOK || r.body["totalResults"] != want {
			t.Errorf("POST .search %s: %d %.300s, want %v results", body, r.status, r.raw, want)
		}
	}
	for _, path := range []string{"//Users", "//spend/v4/Users/", "/profile/identity/v4/swagger", "//provisioning/v4/Schemas/",
		"/profile/v4/ResourceTypes/"} {
		r := get(t, s, path, tok)
		msg, _ := r.body["errorMessage"].(string)
		if r.status != http.StatusNotFound || r.body["errorId"] != "NOT_FOUND" || !strings.Contains(msg, "does not model") {
			t.Errorf("GET %s: %d %s, want the gateway's 404 saying it is not modelled", path, r.status, r.raw)
		}
	}
	if r := get(t, s, "/profile/identity/v4/Schemas/", ""); r.status != http.StatusUnauthorized {
		t.Errorf("Schemas without a bearer: %d, want 401", r.status)
	}
	if r := get(t, s, "/profile/identity/v4/Schemas/urn:nope", tok); r.status != http.StatusNotFound || r.body["status"] != "404" {
		t.Errorf("unknown schema: %d %s, want a SCIM 404", r.status, r.raw)
	}
}

// The strict reading (the references' literal paths) is a knob: an option,
// a setter and an admin endpoint.
func TestStrictPaths(t *testing.T) {
	s := newSim(t, Options{StrictPaths: true})
	s.EnableAdmin(testClient, testCompany)
	tok := accessTokenFor(t, s)
	id := s.Users(testCompany)[0].ID
	check := func(path string, want int) {
		t.Helper()
		if r := get(t, s, path, tok); r.status != want {
			t.Errorf("GET %s: %d, want %d", path, r.status, want)
		}
	}
	check("/profile/identity/v4/Users/"+id, http.StatusOK)
	check("/profile/identity/v4/users/"+id, http.StatusNotFound)
	check("//profile/identity/v4/Users/"+id, http.StatusNotFound)
	check("/profile/identity/v4/Schemas/", http.StatusOK)

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/_sim/strict-paths",
		jsonBody(map[string]bool{"strict": false}))
	if r := do(t, s.Client(), req); r.status != http.StatusOK {
		t.Fatalf("POST /_sim/strict-paths: %d %s", r.status, r.raw)
	}
	check("/profile/identity/v4/users/"+id, http.StatusOK)
	check("//profile/identity/v4/Users/"+id, http.StatusOK)
	s.SetStrictPaths(true)
	check("/profile/identity/v4/users/"+id, http.StatusNotFound)
}
