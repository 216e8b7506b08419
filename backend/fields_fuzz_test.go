package backend

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Fuzz targets for the fields fuzz_test.go does not cover: the token fields
// of config, attributes/excluded_attributes, the employee_number and
// external_id filters, and unknown field names on every path.

// A config write carrying any request_token / refresh_token is refused by
// name (by the engine, or by Concur with nothing stored), never echoes the
// value, and never disturbs the stored token.
func FuzzConfigTokens(f *testing.F) {
	f.Add("at-si86uekvgga2qj2i1bfj89juqgn", "")
	f.Add("", "0f5e3f3a-7a2b-4a54-9c0d-5d4a1c2b3e4f")
	f.Add("at-x", "rt-y")
	f.Add(" \t", "")
	f.Add("", "tok\x00en")
	f.Add(strings.Repeat("r", maxFieldLength+1), "")
	f.Add("", "a\u202eb")
	e := newTestEnv(f, concurtest.Options{Users: 1, Rotation: concurtest.RotationRotate})
	e.bootstrap()
	f.Fuzz(func(t *testing.T, requestToken, refreshToken string) {
		before := e.storedToken()
		data := map[string]any{}
		if requestToken != "" {
			data["request_token"] = requestToken
		}
		if refreshToken != "" {
			data["refresh_token"] = refreshToken
		}
		resp, err := e.request(logical.UpdateOperation, "config", data)
		if len(data) == 0 {
			return // a settings-only write with nothing to change
		}
		if err != nil {
			t.Fatalf("error instead of a 400: %v", err)
		}
		if !resp.IsError() {
			t.Fatalf("a made-up token was accepted")
		}
		msg := resp.Error().Error()
		if !strings.HasPrefix(msg, "request_token") && !strings.HasPrefix(msg, "refresh_token") && !strings.Contains(msg, `field "`) {
			t.Fatalf("400 names no field: %q", msg)
		}
		for _, v := range []string{requestToken, refreshToken} {
			if len(strings.TrimSpace(v)) >= 8 && strings.Contains(msg, strings.TrimSpace(v)) {
				t.Fatalf("the error echoes the token: %q", msg)
			}
		}
		if after := e.storedToken(); after != before || !e.sim.RefreshTokenValid(after.RefreshToken) {
			t.Fatalf("a refused write changed or killed the stored token")
		}
	})
}

// attributes and excluded_attributes reach Concur as exactly the lists
// given (never as extra query parameters), or are refused with a 400.
func FuzzProfileAttributes(f *testing.F) {
	f.Add("userName", "", false)
	f.Add("userName,emails", "name", true)
	f.Add("userName&filter=userName pr", "", true)
	f.Add("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "emails.value", false)
	f.Add(" , ,", "%26count%3D1", false)
	f.Add("a\r\nb", "#x", true)
	door := newFrontDoor(f)
	e := newTestEnv(f, concurtest.Options{Users: 2, Geolocation: door.URL})
	door.setTarget(e.sim.URL)
	e.bootstrap()
	user := e.sim.Users(testCompany)[1]
	f.Fuzz(func(t *testing.T, attributes, excluded string, search bool) {
		data := map[string]any{"attributes": attributes, "excluded_attributes": excluded}
		path := "profile/" + user.ID
		if search {
			path = "profile"
			data["user_name"] = user.UserName
		}
		n := len(door.seenQueries())
		resp, err := e.request(logical.ReadOperation, path, data)
		qs := door.seenQueries()[n:]
		if err != nil {
			if c := codeOf(err); c != 400 {
				t.Fatalf("attributes %q excluded %q: %v", attributes, excluded, err)
			}
		} else if resp.IsError() {
			msg := resp.Error().Error()
			if !strings.Contains(msg, "attributes") {
				t.Fatalf("400 names no field: %q", msg)
			}
		}
		if len(qs) > 1 {
			t.Fatalf("%d Identity requests for one read", len(qs))
		}
		if len(qs) == 0 {
			return
		}
		q, perr := url.ParseQuery(qs[0])
		if perr != nil {
			t.Fatalf("Concur got an unparseable query %q", qs[0])
		}
		for k := range q {
			if k != "attributes" && k != "excludedAttributes" && k != "filter" {
				t.Fatalf("attributes %q excluded %q injected query parameter %q", attributes, excluded, k)
			}
			if len(q[k]) != 1 {
				t.Fatalf("query parameter %q sent %d times", k, len(q[k]))
			}
		}
		if want := joinTrimmed(attributes); q.Get("attributes") != want {
			t.Fatalf("attributes sent as %q, want %q", q.Get("attributes"), want)
		}
		if want := joinTrimmed(excluded); q.Get("excludedAttributes") != want {
			t.Fatalf("excludedAttributes sent as %q, want %q", q.Get("excludedAttributes"), want)
		}
	})
}

// joinTrimmed is what a comma list should look like on the wire.
func joinTrimmed(list string) string {
	var kept []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			kept = append(kept, s)
		}
	}
	return strings.Join(kept, ",")
}

// employee_number and external_id reach Concur as one `eq` comparison with
// the value as a JSON-escaped literal, or are refused by name.
func FuzzProfileSearchFields(f *testing.F) {
	for _, s := range []string{"100003", `1" or employeeNumber pr "`, `\`, "1&count=1000", "ext-\u00e9", "a\nb", strings.Repeat("9", 257)} {
		f.Add(s, false)
		f.Add(s, true)
	}
	door := newFrontDoor(f)
	e := newTestEnv(f, concurtest.Options{Users: 3, Geolocation: door.URL})
	door.setTarget(e.sim.URL)
	e.bootstrap()
	f.Fuzz(func(t *testing.T, value string, external bool) {
		field, attr := "employee_number", "employeeNumber"
		if external {
			field, attr = "external_id", "externalId"
		}
		n := len(door.seenQueries())
		resp, err := e.request(logical.ReadOperation, "profile", map[string]any{field: value})
		qs := door.seenQueries()[n:]
		if err != nil {
			if c := codeOf(err); c != 400 && c != 404 {
				t.Fatalf("%s %q: %v", field, value, err)
			}
			return
		}
		if resp.IsError() {
			if msg := resp.Error().Error(); !strings.Contains(msg, field) {
				t.Fatalf("400 names no field: %q", msg)
			}
			if len(qs) != 0 {
				t.Fatalf("a refused value reached Concur")
			}
			return
		}
		if len(qs) != 1 {
			t.Fatalf("%d Identity requests", len(qs))
		}
		checkSearchQuery(t, qs[0], field, attr, value, external)
		for _, u := range resp.Data["users"].([]any) {
			m := u.(map[string]any)
			if !external {
				m, _ = m["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
			}
			if m[attr] != value {
				t.Fatalf("%s %q matched %v", field, value, u)
			}
		}
	})
}

// Any field a path does not take is refused by name, before Concur is asked.
func FuzzUnknownFieldNames(f *testing.F) {
	for _, s := range []string{"refresh_tokn", "startIndex", "filter", "x-y", "", "min_ttl ", "ID", "\u00e9", "a,b"} {
		f.Add(s)
	}
	e := newTestEnv(f, concurtest.Options{Users: 1})
	e.bootstrap()
	user := e.sim.Users(testCompany)[0]
	paths := []struct {
		op   logical.Operation
		path string
	}{
		{logical.ReadOperation, "config"}, {logical.UpdateOperation, "config"}, {logical.DeleteOperation, "config"},
		{logical.ReadOperation, "creds"}, {logical.UpdateOperation, "rotate"},
		{logical.ReadOperation, "profile/" + user.ID}, {logical.ReadOperation, "profile"},
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, p := range paths {
			route := e.b.Route(p.path)
			if route == nil {
				t.Fatalf("no route for %s", p.path)
			}
			if _, known := route.Fields[name]; known {
				continue
			}
			tokenCalls, userCalls := e.sim.Calls(concurtest.EndpointToken), e.sim.Calls(concurtest.EndpointUsers)
			resp, err := e.request(p.op, p.path, map[string]any{name: "1"})
			if err != nil || resp == nil || !resp.IsError() {
				t.Fatalf("%s %s with field %q: %v / %v, want a 400", p.op, p.path, name, resp, err)
			}
			if msg := resp.Error().Error(); !strings.HasPrefix(msg, "unknown fields: ") || !strings.Contains(msg, name) {
				t.Fatalf("%s %s: %q does not name field %q", p.op, p.path, msg, name)
			}
			if e.sim.Calls(concurtest.EndpointToken) != tokenCalls || e.sim.Calls(concurtest.EndpointUsers) != userCalls {
				t.Fatalf("%s %s with unknown field %q called Concur", p.op, p.path, name)
			}
			if p.op == logical.DeleteOperation {
				if raw, _ := e.storage.Get(t.Context(), defaultCompanyKey); raw == nil {
					t.Fatalf("a refused delete removed the configuration")
				}
			}
		}
	})
}

// checkSearchQuery checks the Identity query a search by field sent: one
// filter comparing attr with exactly value (and employeeNumber with the
// configured company).
func checkSearchQuery(t *testing.T, raw, field, attr, value string, external bool) {
	t.Helper()
	q, _ := url.ParseQuery(raw)
	if !external {
		// employeeNumber goes with the configured company's companyId.
		if q.Get("companyId") != testCompany {
			t.Fatalf("employeeNumber sent without companyId %s: %v", testCompany, q)
		}
		q.Del("companyId")
	}
	filter := q.Get("filter")
	prefix := attr + ` eq "`
	if len(q) != 1 || !strings.HasPrefix(filter, prefix) || !strings.HasSuffix(filter, `"`) {
		t.Fatalf("%s: Concur got query %v", field, q)
	}
	if utf8.ValidString(value) {
		var got string
		if err := json.Unmarshal([]byte(filter[len(prefix)-1:]), &got); err != nil || got != value {
			t.Fatalf("filter %q does not compare with exactly %q (%q, %v)", filter, value, got, err)
		}
	}
}
