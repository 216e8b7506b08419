package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// lifeLeft is how long the token in a creds answer stays valid at now; 0
// when expires_at is missing or malformed.
func lifeLeft(creds map[string]any, now time.Time) time.Duration {
	s, _ := creds["expires_at"].(string)
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0
	}
	return at.Sub(now)
}

func intField(t testing.TB, creds map[string]any, k string) int64 {
	t.Helper()
	v, ok := creds[k].(int64)
	if !ok {
		t.Fatalf("creds %s = %#v, want an integer", k, creds[k])
	}
	return v
}

func TestCredsRotationFieldsFollowTheRenewalSchedule(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	issued := e.clock.Now()

	c := e.creds()
	// One-hour tokens, default 10-minute margin: renewal is due 50 minutes after the grant.
	if got := intField(t, c, "ttl"); got != 50*60 {
		t.Errorf("ttl %d, want 3000", got)
	}
	if got := intField(t, c, "rotation_period"); got != 50*60 {
		t.Errorf("rotation_period %d, want 3000", got)
	}
	if got := c["last_vault_rotation"]; got != issued.UTC().Format(time.RFC3339) {
		t.Errorf("last_vault_rotation %v, want %s", got, issued.UTC().Format(time.RFC3339))
	}

	e.clock.Advance(49*time.Minute + 50*time.Second)
	if got := intField(t, e.creds(), "ttl"); got != 10 {
		t.Errorf("ttl %d ten seconds before the renewal point, want 10", got)
	}
	// Past the renewal point, until the periodic run replaces it, the same
	// token is served with the floor: never 0, never negative.
	e.clock.Advance(30 * time.Second)
	c = e.creds()
	if got := intField(t, c, "ttl"); got != int64(minRotationTTL/time.Second) {
		t.Errorf("ttl %d past the renewal point, want the %s floor", got, minRotationTTL)
	}
	old := c["access_token"]

	if err := e.periodic(); err != nil {
		t.Fatal(err)
	}
	c = e.creds()
	if c["access_token"] == old {
		t.Fatal("periodic run past the renewal point did not renew")
	}
	if got := intField(t, c, "ttl"); got != 50*60 {
		t.Errorf("ttl %d after the renewal, want 3000", got)
	}
	if got := c["last_vault_rotation"]; got != e.clock.Now().UTC().Format(time.RFC3339) {
		t.Errorf("last_vault_rotation %v, want the renewal time %s", got, e.clock.Now().UTC().Format(time.RFC3339))
	}
}

func TestCredsRotationFieldsUseTheRefreshMargin(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{AccessTokenTTL: 20 * time.Minute})
	data := e.baseConfig()
	data["request_token"] = e.sim.NewRequestToken(testClientID, testCompany)
	data["refresh_margin"] = "4m"
	e.mustOK(logical.CreateOperation, "config", data)

	c := e.creds()
	if got := intField(t, c, "ttl"); got != 16*60 {
		t.Errorf("ttl %d, want 960 (20m token, 4m margin)", got)
	}
	if got := intField(t, c, "rotation_period"); got != 16*60 {
		t.Errorf("rotation_period %d, want 960", got)
	}
}

func TestCredsTTLWaitsForTheBackoff(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.clock.Advance(52 * time.Minute)
	e.sim.InjectFault(concurtest.EndpointToken, 100, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	if err := e.periodic(); err == nil {
		t.Fatal("renewal against a failing Concur reported no error")
	}
	// The first failure backs off 15 s: no different token before then.
	if got := intField(t, e.creds(), "ttl"); got != int64(backoffBase/time.Second) {
		t.Errorf("ttl %d while backing off, want %d", got, int64(backoffBase/time.Second))
	}
}

func TestCredsTTLWhenTheRefreshTokenNearsItsEnd(t *testing.T) {
	// Every grant pushes the refresh token only 3 days forward: inside the
	// 7-day safety margin, renewal is always due.
	e := newTestEnv(t, concurtest.Options{RefreshTokenTTL: 72 * time.Hour})
	e.bootstrap()
	if got := intField(t, e.creds(), "ttl"); got != int64(minRotationTTL/time.Second) {
		t.Errorf("ttl %d with the refresh token near its end, want the floor", got)
	}
}

// An Agent-like reader that re-reads ttl+1 seconds after each read (as
// consul-template does for rotating secrets) never holds an expired token and
// picks up each renewal within a few seconds, with few reads.
func TestCredsTTLLetsAgentFollowRenewals(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	start := e.clock.Now()

	c := e.creds()
	held, nextRead := c["access_token"], e.clock.Now().Add(time.Duration(intField(t, c, "ttl")+1)*time.Second)
	heldLeft := func() time.Duration { return lifeLeft(c, e.clock.Now()) }
	var renewedAt time.Time
	reads, renewals := 1, 0
	for e.clock.Now().Sub(start) < 5*time.Hour {
		e.clock.Advance(time.Second)
		if e.clock.Now().Sub(start)%time.Minute == 0 { // Vault's rollback manager
			grants := e.sim.GrantCalls("refresh_token")
			_ = e.periodic()
			if e.sim.GrantCalls("refresh_token") != grants {
				renewedAt, renewals = e.clock.Now(), renewals+1
			}
		}
		if !e.clock.Now().Before(nextRead) {
			c = e.creds()
			reads++
			if c["access_token"] != held {
				if lag := e.clock.Now().Sub(renewedAt); lag > minRotationTTL+time.Second {
					t.Errorf("picked up a renewal %s after it happened", lag)
				}
				held = c["access_token"]
			}
			nextRead = e.clock.Now().Add(time.Duration(intField(t, c, "ttl")+1) * time.Second)
		}
		if heldLeft() <= 0 {
			t.Fatalf("the reader holds an expired token at %s", e.clock.Now().Sub(start))
		}
	}
	if renewals < 5 {
		t.Fatalf("%d renewals in 5 hours, want at least 5", renewals)
	}
	// Per renewal: the read at the renewal point, floor re-reads until the
	// periodic run (at most a minute), and the read that picks it up.
	if limit := renewals * (2 + int(time.Minute/(minRotationTTL+time.Second)) + 1); reads > limit+1 {
		t.Errorf("%d reads for %d renewals, want at most %d", reads, renewals, limit+1)
	}
}
