package backend

import (
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// An unreadable 2xx from the token endpoint (the grant happened, its answer
// is lost) is counted as outcome_unknown, not as a failed renewal: it is
// not retried with the same token and needs a look of its own (fails while
// grantOutcome calls it failed).
func TestMetricsCountUnreadableGrantAnswerAsOutcomeUnknown(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.clock.Advance(55 * time.Minute)
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultMalformedJSON})
	_ = e.periodic()
	m := scrape(t, e)
	wantValue(t, m, 1, "vault_concur_grants_total", "grant_type", grantRefresh, "outcome", outcomeUnknown, "code", "none")
	wantValue(t, m, 1, "vault_concur_renewal_duration_seconds", "outcome", outcomeUnknown)
	if n, ok := value(m, "vault_concur_grants_total", "grant_type", grantRefresh, "outcome", outcomeFailed); ok && n != 0 {
		t.Errorf("the unreadable answer was also counted as failed (%v)", n)
	}
	wantValue(t, m, 1, "vault_concur_companies", "status", statusDegraded)
}
