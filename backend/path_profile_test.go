package backend

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

func TestProfileByID(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 5})
	e.bootstrap()
	user := e.sim.Users(testCompany)[2]

	resp := e.mustOK(logical.ReadOperation, "profile/"+user.ID, nil)
	got := profileUser(t, resp)
	if got["id"] != user.ID || got["userName"] != user.UserName {
		t.Errorf("got id %v userName %v, want %s %s", got["id"], got["userName"], user.ID, user.UserName)
	}
	if _, ok := got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]; !ok {
		t.Errorf("the enterprise extension is missing: %v", got)
	}

	resp = e.mustOK(logical.ReadOperation, "profile/"+user.ID, map[string]any{"attributes": "userName"})
	if _, ok := profileUser(t, resp)["emails"]; ok {
		t.Errorf("attributes=userName still returned emails")
	}
}

func TestProfileSearch(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 5})
	e.bootstrap()
	user := e.sim.Users(testCompany)[3]

	filters := map[string]string{"user_name": user.UserName, "employee_number": user.EmployeeNumber, "external_id": user.ExternalID}
	for field, value := range filters {
		resp := e.mustOK(logical.ReadOperation, "profile", map[string]any{field: value})
		users := resp.Data["users"].([]any)
		if len(users) != 1 || users[0].(map[string]any)["id"] != user.ID {
			t.Errorf("%s=%s found %v, want the one user %s", field, value, users, user.ID)
		}
		if resp.Data["total_results"] != 1 {
			t.Errorf("%s: total_results %v", field, resp.Data["total_results"])
		}
	}
}

func TestProfileBadInputNamesTheField(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	calls := e.sim.Calls(concurtest.EndpointUsers)
	for _, tc := range []struct {
		path  string
		data  map[string]any
		field string
	}{
		{"profile/not-a-uuid", nil, "id"},
		{"profile/../../oauth2/v0/token", nil, "id"},
		{"profile/3df11695-e8bb-40ff-8e98-c85913ab2789?x=1", nil, "id"},
		{"profile/3df11695-e8bb-40ff-8e98-c85913ab2789%2F..", nil, "id"},
		{"profile", map[string]any{"count": 1001}, "count"},
		{"profile", map[string]any{"start_index": 2}, "start_index"},
		{"profile", map[string]any{"cursor": "a b"}, "cursor"},
		{"profile", map[string]any{"user_name": "a", "cursor": "abc"}, "cursor"},
		{"profile", map[string]any{"user_name": "a", "external_id": "b"}, "user_name, employee_number, external_id"},
		{"profile", map[string]any{"user_name": ""}, "user_name"},
		{"profile", map[string]any{"user_name": "a", "count": 500}, "count"},
		{"profile", map[string]any{"user_name": "a", "start_index": 0}, "start_index"},
		{"profile", map[string]any{"user_name": "a", "filter": "x"}, "filter"},
		{"profile", map[string]any{"filter": ""}, "filter"},
		{"profile", map[string]any{"filter": `password eq "x"`}, "filter"},
		{"profile", map[string]any{"filter": `emails[not(type eq "work")]`}, "filter"},
		{"profile", map[string]any{"filter": `emails[value sw "a" and value ew "b"]`}, "filter"},
		{"profile", map[string]any{"filter": "userName eq \"a\u0000\""}, "filter"},
		{"profile", map[string]any{"filter": `userName eq "` + strings.Repeat("a", 4100) + `"`}, "filter"},
		{"profile", map[string]any{"filter": `active eq true`, "start_index": 2}, "start_index"},
		{"profile", map[string]any{"filter": `active eq true`, "count": 1001}, "count"},
	} {
		resp, err := e.request(logical.ReadOperation, tc.path, tc.data)
		if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tc.field) {
			t.Errorf("%s %v: got %v / %v, want a 400 naming %q", tc.path, tc.data, resp, err, tc.field)
		}
	}
	if e.sim.Calls(concurtest.EndpointUsers) != calls {
		t.Errorf("bad input reached Concur")
	}
}

func TestProfileUnknownUserIs404(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	_, err := e.request(logical.ReadOperation, "profile/3df11695-e8bb-40ff-8e98-c85913ab2789", nil)
	if codeOf(err) != 404 {
		t.Errorf("unknown user: %v, want 404", err)
	}
}

func TestProfileRefreshesOnceWhenConcurRejectsTheToken(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(strings.TrimSpace(strconv.Itoa(status/100)+"xx"), func(t *testing.T) {
			e := newTestEnv(t, concurtest.Options{UnauthorizedStatus: status, Rotation: concurtest.RotationGrace})
			e.bootstrap()
			user := e.sim.Users(testCompany)[0]
			// Concur drops the connection's tokens (an admin reconnects, say) but a
			// fresh grant from the still-valid refresh token works again.
			e.sim.InjectFault(concurtest.EndpointUsers, 1, concurtest.Fault{Kind: concurtest.FaultStatus, Status: status})
			before := e.sim.GrantCalls("refresh_token")
			resp := e.mustOK(logical.ReadOperation, "profile/"+user.ID, nil)
			if profileUser(t, resp)["id"] != user.ID {
				t.Errorf("retry did not return the user")
			}
			if got := e.sim.GrantCalls("refresh_token") - before; got != 1 {
				t.Errorf("refresh grants after a %d: %d, want 1", status, got)
			}
		})
	}
}

func TestProfileGivesUpAfterOneRetry(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	user := e.sim.Users(testCompany)[0]
	e.sim.InjectFault(concurtest.EndpointUsers, 10, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 401})
	before := e.sim.GrantCalls("refresh_token")
	_, err := e.request(logical.ReadOperation, "profile/"+user.ID, nil)
	if codeOf(err) != 502 || !strings.Contains(err.Error(), "401") {
		t.Errorf("got %v, want 502 naming Concur's 401", err)
	}
	if got := e.sim.GrantCalls("refresh_token") - before; got != 1 {
		t.Errorf("refresh grants = %d, want exactly 1", got)
	}
	if e.sim.Calls(concurtest.EndpointUsers) != 2 {
		t.Errorf("Identity calls = %d, want 2 (one retry)", e.sim.Calls(concurtest.EndpointUsers))
	}
}

func TestRotate(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	old := e.creds()["access_token"]
	e.clock.Advance(time.Minute)

	resp := e.mustOK(logical.UpdateOperation, "rotate", nil)
	if _, ok := resp.Data["access_token"]; ok {
		t.Errorf("rotate returned a token")
	}
	want := e.clock.Now().Add(time.Hour).Format(time.RFC3339)
	if resp.Data["access_token_expires_at"] != want {
		t.Errorf("access_token_expires_at %v, want %s", resp.Data["access_token_expires_at"], want)
	}
	if e.creds()["access_token"] == old {
		t.Errorf("creds still serves the pre-rotation token")
	}
	if resp, _ := e.request(logical.UpdateOperation, "rotate", map[string]any{"force": true}); resp == nil || !resp.IsError() {
		t.Errorf("unknown field accepted on rotate")
	}
}

// profileUser is the user of a profile/<id> response, which nests it under "user".
func profileUser(t testing.TB, resp *logical.Response) map[string]any {
	t.Helper()
	if len(resp.Data) != 1 {
		t.Fatalf("profile response has keys %v, want only \"user\"", resp.Data)
	}
	u, ok := resp.Data["user"].(map[string]any)
	if !ok {
		t.Fatalf("profile response: user is %T, want an object", resp.Data["user"])
	}
	return u
}

// TestProfileUpstreamKeysCannotSteerVault covers issue 10 point 7: a user
// carrying Vault's raw-response keys must come back as data, nested under
// "user", never as top-level keys Vault would act on.
func TestProfileUpstreamKeysCannotSteerVault(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 3})
	e.bootstrap()
	user := e.sim.Users(testCompany)[1]
	hostile := map[string]any{
		logical.HTTPStatusCode:                307,
		logical.HTTPContentType:               "text/html",
		logical.HTTPRawBody:                   "<script>x</script>",
		logical.HTTPRawBodyAlreadyJSONDecoded: true,
		logical.HTTPCacheControlHeader:        "public",
		logical.HTTPPragmaHeader:              "cache",
		logical.HTTPWWWAuthenticateHeader:     "Basic",
	}
	if !e.sim.SetUserAttributes(testCompany, user.ID, hostile) {
		t.Fatal("simulator does not know the user")
	}
	for _, path := range []string{"profile/" + user.ID} {
		resp := e.mustOK(logical.ReadOperation, path, nil)
		for k := range hostile {
			if _, top := resp.Data[k]; top {
				t.Errorf("%s: upstream key %s reached the top level of the response", path, k)
			}
		}
		got := profileUser(t, resp)
		if got[logical.HTTPStatusCode] != float64(307) && got[logical.HTTPStatusCode] != 307 {
			t.Errorf("%s: the user's own %s attribute was lost: %v", path, logical.HTTPStatusCode, got[logical.HTTPStatusCode])
		}
	}
	resp := e.mustOK(logical.ReadOperation, "profile", map[string]any{"user_name": user.UserName})
	for k := range hostile {
		if _, top := resp.Data[k]; top {
			t.Errorf("profile search: upstream key %s reached the top level", k)
		}
	}
}

// Issue 11 point 3: profile without a filter pages through the company's
// users (Identity v4.1, count and cursor in, next_cursor out), one Concur
// call per read.
func TestProfileRosterPagesWithCursor(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 25})
	e.bootstrap()
	seen := map[any]bool{}
	data := map[string]any{"count": 10, "attributes": "userName"}
	for page := 1; ; page++ {
		before := e.sim.Calls(concurtest.EndpointUsers)
		resp := e.mustOK(logical.ReadOperation, "profile", data)
		if got := e.sim.Calls(concurtest.EndpointUsers) - before; got != 1 {
			t.Fatalf("page %d took %d Identity calls, want 1", page, got)
		}
		if resp.Data["total_results"] != 25 {
			t.Fatalf("total_results %v", resp.Data["total_results"])
		}
		for _, u := range resp.Data["users"].([]any) {
			seen[u.(map[string]any)["id"]] = true
		}
		next := resp.Data["next_cursor"].(string)
		if next == "" {
			if page != 3 {
				t.Errorf("%d pages, want 3", page)
			}
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		data["cursor"] = next
	}
	if len(seen) != 25 {
		t.Errorf("%d distinct users, want 25", len(seen))
	}
	// Filters keep working as before (Identity v4, start_index paging).
	user := e.sim.Users(testCompany)[3]
	resp := e.mustOK(logical.ReadOperation, "profile", map[string]any{"employee_number": user.EmployeeNumber})
	if resp.Data["start_index"] != 1 || len(resp.Data["users"].([]any)) != 1 {
		t.Errorf("filtered search: %v", resp.Data)
	}
	if _, has := resp.Data["next_cursor"]; has {
		t.Error("a filtered search has no cursor")
	}
}

// An employee_number search sends companyId, so it also works where Concur
// reads the v4 reference strictly (companyId required with employeeNumber).
func TestProfileEmployeeNumberSendsCompanyID(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 5, RequireCompanyID: true})
	e.bootstrap()
	user := e.sim.Users(testCompany)[2]
	resp := e.mustOK(logical.ReadOperation, "profile", map[string]any{"employee_number": user.EmployeeNumber})
	if users := resp.Data["users"].([]any); len(users) != 1 || users[0].(map[string]any)["id"] != user.ID {
		t.Errorf("employee_number search: %v", resp.Data)
	}
}

// Issue 21 point 3: profile with filter is an Identity v4.1 search (the SCIM
// expression in the POST body), paged with cursor, one Concur call per read,
// so an app can ask for active users by e-mail domain without a token.
func TestProfileFilterSearch(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 25})
	e.bootstrap()
	users := e.sim.Users(testCompany)
	domain := users[0].UserName[strings.Index(users[0].UserName, "@"):]
	data := map[string]any{"filter": `active eq true and emails.value ew "` + strings.ToUpper(domain) + `"`, "count": 10,
		"attributes": "active,userName"}
	seen := map[any]bool{}
	for page := 1; ; page++ {
		before := e.sim.Calls(concurtest.EndpointUsers)
		resp := e.mustOK(logical.ReadOperation, "profile", data)
		if got := e.sim.Calls(concurtest.EndpointUsers) - before; got != 1 {
			t.Fatalf("page %d took %d Identity calls, want 1", page, got)
		}
		if resp.Data["total_results"] != 22 { // every seventh simulated user has left
			t.Fatalf("total_results %v, want 22", resp.Data["total_results"])
		}
		for _, u := range resp.Data["users"].([]any) {
			if u.(map[string]any)["active"] != true {
				t.Errorf("an inactive user matched: %v", u)
			}
			seen[u.(map[string]any)["id"]] = true
		}
		next := resp.Data["next_cursor"].(string)
		if next == "" {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		data["cursor"] = next
	}
	if len(seen) != 22 {
		t.Errorf("%d distinct users, want 22", len(seen))
	}
	// Concur's dialect: an unquoted UUID; characters that would matter in a URL are only data.
	resp := e.mustOK(logical.ReadOperation, "profile", map[string]any{"filter": "id eq " + users[4].ID})
	if got := resp.Data["users"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != users[4].ID {
		t.Errorf("id eq <uuid>: %v", resp.Data)
	}
	resp = e.mustOK(logical.ReadOperation, "profile", map[string]any{"filter": `userName eq "../../oauth2/v0/token?x=1&y=%2F"`})
	if resp.Data["total_results"] != 0 {
		t.Errorf("a filter with URL characters: %v", resp.Data)
	}
}
