package backend

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

func (e *testEnv) deprecationLogLines() int {
	return strings.Count(e.logs.String(), "Concur marks an API the engine uses as deprecated")
}

// Concur's deprecation headers (issue 11.6) are logged once per API per
// day, shown on the responses of the paths that API serves and, all of
// them, in config read, while one was seen in the last day.
func TestDeprecationNoticesAreLoggedDailyAndShown(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	const tokenWarn, sunset = "oauth2 v0 token is deprecated", "Wed, 30 Dec 2026 23:59:59 GMT"
	e.sim.SetDeprecation(concurtest.EndpointToken, tokenWarn, sunset)
	e.bootstrap() // password grant
	for range 3 {
		e.mustOK(logical.UpdateOperation, "rotate", nil) // refresh grants
	}
	if n := e.deprecationLogLines(); n != 2 {
		t.Errorf("%d log lines, want 2 (password grant, refresh grant)", n)
	}
	if resp := e.mustOK(logical.ReadOperation, "creds", nil); !hasWarning(resp, "refresh grant", tokenWarn, sunset) {
		t.Errorf("creds warnings %q", resp.Warnings)
	}
	user := e.sim.Users(testCompany)[0].ID
	if resp := e.mustOK(logical.ReadOperation, "profile/"+user, nil); hasWarning(resp, "deprecated") {
		t.Errorf("profile shows the token endpoint's notice: %q", resp.Warnings)
	}

	const usersWarn = "Identity v4 is deprecated; use v4.1"
	e.sim.SetDeprecation(concurtest.EndpointUsers, usersWarn, "")
	if resp := e.mustOK(logical.ReadOperation, "profile/"+user, nil); !hasWarning(resp, "get user", usersWarn) || hasWarning(resp, tokenWarn) {
		t.Errorf("profile warnings %q", resp.Warnings)
	}
	if resp := e.mustOK(logical.UpdateOperation, "rotate", nil); hasWarning(resp, usersWarn) || !hasWarning(resp, tokenWarn) {
		t.Errorf("rotate warnings %q", resp.Warnings)
	}
	read := e.mustOK(logical.ReadOperation, "config", nil)
	if !hasWarning(read, usersWarn) || !hasWarning(read, "password grant", tokenWarn) || !hasWarning(read, "refresh grant", tokenWarn) {
		t.Errorf("config read warnings %q", read.Warnings)
	}
	for _, w := range read.Warnings {
		if strings.Contains(w, user) {
			t.Errorf("a shared warning names a user id: %q", w)
		}
	}

	// A day later the same notices are logged once more.
	e.clock.Advance(deprecationWindow)
	e.mustOK(logical.UpdateOperation, "rotate", nil)
	if n := e.deprecationLogLines(); n != 4 {
		t.Errorf("%d log lines after a day, want 4 (refresh grant again)", n)
	}

	// Notices not seen for a day are gone.
	e.sim.SetDeprecation(concurtest.EndpointToken, "", "")
	e.sim.SetDeprecation(concurtest.EndpointUsers, "", "")
	e.clock.Advance(deprecationWindow)
	e.mustOK(logical.UpdateOperation, "rotate", nil)
	if read := e.mustOK(logical.ReadOperation, "config", nil); hasWarning(read, "deprecated") {
		t.Errorf("notices older than a day still shown: %q", read.Warnings)
	}
}
