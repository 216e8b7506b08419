package backend

import (
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Seven simulated months of Vault's once-a-minute rollback ticks (sampled
// every five minutes) with a refresh token that rotates on every use: the
// engine must never let it lapse and never present a dead one.
func TestPeriodicRenewalOverSevenMonths(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.sim.ResetCounters()

	const tick = 5 * time.Minute
	end := testEpoch.AddDate(0, 7, 0)
	for e.clock.Now().Before(end) {
		e.clock.Advance(tick)
		if err := e.periodic(); err != nil {
			t.Fatalf("%s: periodic: %v", e.clock.Now().Format(time.RFC3339), err)
		}
		if st := e.b.defaultEntry(); st.Token.ExpiresAt.Before(e.clock.Now()) {
			t.Fatalf("%s: the access token expired", e.clock.Now().Format(time.RFC3339))
		}
	}

	if n := e.sim.ErrorCount(108); n != 0 {
		t.Fatalf("invalid_grant answers: %d", n)
	}
	// Refreshed about once per (lifetime - margin): 50 minutes.
	hours := end.Sub(testEpoch).Hours()
	grants := e.sim.GrantCalls("refresh_token")
	if want := int(hours * 60 / 50); grants < want*9/10 || grants > want*11/10 {
		t.Errorf("refresh grants = %d, want about %d", grants, want)
	}
	st := e.b.defaultEntry()
	if st.Token.RefreshExpiresAt.Before(e.clock.Now().AddDate(0, 5, 0)) {
		t.Errorf("refresh token expires %s: renewals did not slide it forward", st.Token.RefreshExpiresAt)
	}
	if st.Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, testCompany) {
		t.Errorf("the engine does not hold Concur's current refresh token")
	}
	if c := e.creds(); c["access_token"] != st.Token.AccessToken {
		t.Errorf("creds does not serve the current token")
	}
}

func TestPeriodicDoesNothingWithoutConfig(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	if err := e.periodic(); err != nil {
		t.Fatal(err)
	}
	if e.sim.Calls(concurtest.EndpointToken) != 0 {
		t.Errorf("periodic called Concur without config")
	}
}
