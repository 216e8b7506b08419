package e2e

import (
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Renewal by Vault's own periodic function (the rollback manager, once a
// minute) with no client asking: with short-lived access tokens, the active
// node renews before expiry, and after a fail-over the new active node takes
// over the renewals. The simulator rotates refresh tokens on every use and
// must never see a spent one.
func TestHAPeriodicRenewal(t *testing.T) {
	t.Parallel()
	const ttl = 75 * time.Second // with refresh_margin 1m, renewal is due 15 s after each grant
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate, AccessTokenTTL: ttl})
	cl := StartRaftCluster(t, 3)
	active := cl.Active()
	SetupPlugin(t, mountPath, append([]*Node{active}, cl.Standbys(active)...)...)
	rt := s.NewRequestToken(s.ClientID, s.Company)
	if _, err := active.Client.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/config",
		s.configData(map[string]any{"request_token": rt, "refresh_margin": "1m"})); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}

	// No client request from here on until a renewal happened: only the
	// periodic function can cause it.
	waitForRenewal := func(what string) {
		t.Helper()
		before := s.GrantCalls("refresh_token")
		deadline := time.Now().Add(ttl + 2*time.Minute)
		for s.GrantCalls("refresh_token") == before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no periodic renewal within %s", what, ttl+2*time.Minute)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitForRenewal("first active node")

	old := active
	old.Stop()
	active = cl.Active()
	if active == old {
		t.Fatal("stopped node still active")
	}
	waitForRenewal("new active node " + active.cfg.Name)

	// Every remaining node serves the renewed token, which is Concur's newest.
	tok := accessToken(readCreds(t, active.Client, mountPath, 0))
	for _, nd := range cl.Standbys(active) {
		if nd == old {
			continue
		}
		if got := accessToken(readCreds(t, nd.Client, mountPath, 0)); got != tok {
			t.Errorf("standby %s serves a different token", nd.cfg.Name)
		}
	}
	if st := readConfig(t, active.Client, mountPath); st["status"] != "ok" {
		t.Errorf("config status %v (last_error %v), want ok", st["status"], st["last_error"])
	}
	if n := s.ErrorCount(108); n != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times", n)
	}
	if n := s.GrantCalls("password"); n != 1 {
		t.Errorf("password grants = %d, want 1", n)
	}
}
