package backend

import (
	"context"
	"net/http"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// A request that reaches its storage write only after Clean returned (it
// was in flight when Clean ran; a request sent to the old instance after
// Clean takes the same steps) must not write: the next instance owns
// storage and, on CE, never hears of a write it did not make (no
// Invalidate), so an app-only config write landing now would leave it
// running with the old settings while storage holds the new ones.
func TestAppOnlyConfigWriteAfterCleanWritesNothing(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.b.Cleanup(context.Background())
	puts := e.storage.putCount()
	_, err := e.request(logical.UpdateOperation, "config", map[string]any{"refresh_margin": 900})
	if codeOf(err) != http.StatusServiceUnavailable {
		t.Errorf("an app-only config write after Clean: %v, want 503 (shutting down)", err)
	}
	if got := e.storage.putCount() - puts; got != 0 {
		t.Errorf("%d storage writes after Clean returned", got)
	}
}

// revoke=true asks Concur to end the company's connection: a state change
// at Concur, which after Clean is the next instance's to make (or not).
func TestRevokeAfterCleanCallsNothing(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	e.b.Cleanup(context.Background())
	calls := e.sim.Calls(concurtest.EndpointConnections)
	_, err := e.request(logical.DeleteOperation, "companies/acme", map[string]any{"revoke": true})
	if codeOf(err) != http.StatusServiceUnavailable {
		t.Errorf("a delete with revoke=true after Clean: %v, want 503 (shutting down)", err)
	}
	if got := e.sim.Calls(concurtest.EndpointConnections) - calls; got != 0 {
		t.Errorf("%d revocations sent to Concur after Clean returned", got)
	}
	if _, found := storedCompany(e.storage, "acme"); !found {
		t.Errorf("the company was deleted after Clean returned")
	}
}
