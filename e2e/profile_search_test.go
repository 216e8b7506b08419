package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Issue 21 point 3, through a real Vault: an app holding only the
// operators' profile policy asks "active users whose e-mail ends in
// @<domain>" with a SCIM filter on concur/profile and on
// companies/<name>/profile, pages with cursor, and gets a 400 naming filter
// for a filter Concur's guide rules out, which never reaches Concur.
func TestProfileFilterSearch(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Users: 25})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	root := n.Client
	s.bootstrap(t, root, mountPath)
	acme := randUUID()
	s.connect(t, root, "acme", acme)
	policy := `path "concur/profile" { capabilities = ["read"] }
path "concur/companies/+/profile" { capabilities = ["read"] }`
	if err := root.Sys().PutPolicy("concur-profile-search", policy); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	app := clientWithPolicies(t, root, "concur-profile-search")

	for _, tc := range []struct{ path, company string }{{"concur/profile", s.Company}, {"concur/companies/acme/profile", acme}} {
		users := s.Users(tc.company)
		domain := users[0].UserName[strings.Index(users[0].UserName, "@"):]
		active := 0
		for i := range users {
			if (i+1)%7 != 0 { // the simulator's every seventh user has left
				active++
			}
		}
		query := map[string][]string{"filter": {`active eq true and emails.value ew "` + domain + `"`}, "count": {"4"}}
		seen := map[any]bool{}
		for page := 1; ; page++ {
			sec, err := app.Logical().ReadWithData(tc.path, query)
			if err != nil || sec == nil {
				t.Fatalf("%s filter page %d: %v", tc.path, page, err)
			}
			if fmt.Sprint(sec.Data["total_results"]) != fmt.Sprint(active) {
				t.Fatalf("%s: total_results %v, want %d", tc.path, sec.Data["total_results"], active)
			}
			for _, u := range sec.Data["users"].([]any) {
				seen[u.(map[string]any)["id"]] = true
			}
			next, _ := sec.Data["next_cursor"].(string)
			if next == "" {
				break
			}
			if page > len(users) {
				t.Fatalf("%s: paging does not end", tc.path)
			}
			query["cursor"] = []string{next}
		}
		if len(seen) != active || active == 0 {
			t.Errorf("%s: %d distinct users, want the %d active ones", tc.path, len(seen), active)
		}
	}

	calls := s.Calls(concurtest.EndpointUsers)
	_, err := app.Logical().ReadWithData("concur/profile", map[string][]string{"filter": {`emails[not(type eq "work")]`}})
	if re := wantStatus(t, err, 400, "a filter Concur refuses"); !strings.Contains(errText(re), "filter") {
		t.Errorf("the error does not name filter: %q", errText(re))
	}
	if s.Calls(concurtest.EndpointUsers) != calls {
		t.Error("a refused filter reached Concur")
	}
}
