package backend

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

func TestCredsServesTheCachedToken(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	calls := e.sim.Calls(concurtest.EndpointToken)

	first := e.creds()
	e.clock.Advance(30 * time.Minute)
	second := e.creds()
	if first["access_token"] != second["access_token"] {
		t.Errorf("a still-fresh token was replaced")
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("reads of a fresh token called Concur")
	}
	if second["ttl"] != int64(20*60) {
		t.Errorf("ttl %v, want 1200 (renewal 10 minutes before expiry)", second["ttl"])
	}
	for _, k := range []string{"access_token", "token_type", "expires_at", "ttl", "rotation_period", "last_vault_rotation",
		"geolocation", "company_uuid", "scope"} {
		if _, ok := second[k]; !ok {
			t.Errorf("creds lacks %q", k)
		}
	}
	if second["company_uuid"] != testCompany || second["token_type"] != "Bearer" {
		t.Errorf("creds company %v type %v", second["company_uuid"], second["token_type"])
	}
}

func TestCredsConcurrentReadersShareOneRefresh(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.sim.ResetCounters()
	// Less than a minute left: every reader wants a renewal.
	e.clock.Advance(59*time.Minute + 30*time.Second)
	// Slow Concur down so all readers pile up behind one call.
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultDelay, Delay: 200 * time.Millisecond})

	const readers = 64
	var wg sync.WaitGroup
	tokens := make([]string, readers)
	errs := make([]error, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.request(logical.ReadOperation, "creds", nil)
			if err == nil && resp != nil && !resp.IsError() {
				tokens[i] = resp.Data["access_token"].(string)
			} else {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || tokens[i] == "" {
			t.Fatalf("reader %d: %v", i, err)
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("readers got different tokens")
		}
	}
	if got := e.sim.GrantCalls("refresh_token"); got != 1 {
		t.Errorf("refresh grants = %d, want exactly 1", got)
	}
	if n := e.sim.ErrorCount(108); n != 0 {
		t.Errorf("invalid_grant answers: %d", n)
	}
}

func TestCredsMinTTL(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.clock.Advance(20 * time.Minute)
	before := e.sim.GrantCalls("refresh_token")

	// 40 minutes are left: min_ttl of 30m is served as is.
	e.mustOK(logical.ReadOperation, "creds", map[string]any{"min_ttl": "30m"})
	if e.sim.GrantCalls("refresh_token") != before {
		t.Errorf("min_ttl below the remaining life caused a refresh")
	}
	// 50m is more than is left: renew first.
	resp := e.mustOK(logical.ReadOperation, "creds", map[string]any{"min_ttl": 3000})
	if e.sim.GrantCalls("refresh_token") != before+1 {
		t.Errorf("min_ttl above the remaining life did not refresh")
	}
	if left := lifeLeft(resp.Data, e.clock.Now()); left < 3000*time.Second {
		t.Errorf("%s left after refresh, want at least 3000s", left)
	}
	for _, bad := range []any{"2h", "abc", -5} {
		resp, err := e.request(logical.ReadOperation, "creds", map[string]any{"min_ttl": bad})
		if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "min_ttl") {
			t.Errorf("min_ttl=%v: got %v / %v, want a 400 naming min_ttl", bad, resp, err)
		}
	}
	resp, _ = e.request(logical.ReadOperation, "creds", map[string]any{"ttl_min": 1})
	if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "ttl_min") {
		t.Errorf("unknown field not refused by name: %v", resp)
	}
}

func TestCredsNotConfigured(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	_, err := e.request(logical.ReadOperation, "creds", nil)
	if codeOf(err) != 400 || !strings.Contains(err.Error(), "config") {
		t.Errorf("creds before config: %v, want 400 pointing at config", err)
	}
}

func TestCredsTransientFailureServesValidTokenWithWarning(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	token := e.creds()["access_token"]

	e.clock.Advance(52 * time.Minute) // inside the 10-minute margin
	e.sim.InjectFault(concurtest.EndpointToken, 100, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	if err := e.periodic(); err == nil {
		t.Fatalf("periodic renewal against a failing Concur reported no error")
	}
	resp := e.mustOK(logical.ReadOperation, "creds", nil)
	if resp.Data["access_token"] != token {
		t.Errorf("the still-valid token was not served")
	}
	if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "503") {
		t.Errorf("warnings %v, want one naming Concur's 503", resp.Warnings)
	}
	cfg := e.mustOK(logical.ReadOperation, "config", nil).Data
	if cfg["status"] != statusDegraded || !strings.Contains(cfg["last_error"].(string), "503") {
		t.Errorf("config status %v last_error %v", cfg["status"], cfg["last_error"])
	}

	// Backing off: the next ticks inside the backoff window do not call Concur.
	calls := e.sim.Calls(concurtest.EndpointToken)
	e.clock.Advance(5 * time.Second)
	_ = e.periodic()
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("renewal retried inside its backoff window")
	}

	// Once Concur recovers, the next due tick renews and clears the error.
	e.sim.ClearFaults()
	e.clock.Advance(backoffMax)
	if err := e.periodic(); err != nil {
		t.Fatalf("renewal after recovery: %v", err)
	}
	cfg = e.mustOK(logical.ReadOperation, "config", nil).Data
	if cfg["status"] != statusOK || cfg["last_error"] != "" {
		t.Errorf("after recovery: status %v last_error %v", cfg["status"], cfg["last_error"])
	}
}

func TestCredsExpiredTokenAndConcurDownIsAGatewayError(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.clock.Advance(2 * time.Hour)
	e.sim.InjectFault(concurtest.EndpointToken, 100, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 500})
	_, err := e.request(logical.ReadOperation, "creds", nil)
	if codeOf(err) != 502 || !strings.Contains(err.Error(), "500") {
		t.Fatalf("creds: %v, want 502 naming Concur's 500", err)
	}
}

func TestCredsPermanentErrorNeedsBootstrap(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.sim.RevokeConnection(testClientID, testCompany)
	e.clock.Advance(55 * time.Minute)
	_ = e.periodic()

	cfg := e.mustOK(logical.ReadOperation, "config", nil).Data
	if cfg["status"] != statusNeedsBootstrap || !strings.Contains(cfg["last_error"].(string), "108") {
		t.Fatalf("config status %v last_error %v, want needs_bootstrap naming code 108", cfg["status"], cfg["last_error"])
	}
	_, err := e.request(logical.ReadOperation, "creds", nil)
	if codeOf(err) != 503 || !strings.Contains(err.Error(), "108") || !strings.Contains(err.Error(), "concur/config") {
		t.Errorf("creds: %v, want 503 naming code 108 and what to do", err)
	}
	// No more automatic attempts until an operator acts.
	calls := e.sim.Calls(concurtest.EndpointToken)
	for range 5 {
		e.clock.Advance(time.Hour)
		_ = e.periodic()
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("renewal kept calling Concur after a permanent error")
	}
	// A new bootstrap brings it back.
	e.bootstrap()
	if e.mustOK(logical.ReadOperation, "config", nil).Data["status"] != statusOK {
		t.Errorf("status not ok after a new bootstrap")
	}
}

func TestNoConcurCallWhereStorageIsNotWritable(t *testing.T) {
	states := []struct {
		name  string
		state consts.ReplicationState
		local bool
	}{
		{"performance standby", consts.ReplicationPerformanceStandby, false},
		{"performance secondary", consts.ReplicationPerformanceSecondary, false},
		{"DR secondary", consts.ReplicationDRSecondary, false},
	}
	for _, s := range states {
		t.Run(s.name, func(t *testing.T) {
			e := newTestEnv(t, concurtest.Options{})
			e.bootstrap()
			e.clock.Advance(59*time.Minute + 30*time.Second) // renewal due everywhere
			e.asReplicationState(s.state, s.local)
			e.storage.set(0, true)
			e.sim.ResetCounters()

			if err := e.periodic(); err != nil {
				t.Errorf("periodic: %v", err)
			}
			if _, err := e.request(logical.ReadOperation, "creds", nil); !errors.Is(err, logical.ErrReadOnly) {
				t.Errorf("creds needing renewal: %v, want ErrReadOnly so Vault forwards", err)
			}
			if _, err := e.request(logical.UpdateOperation, "rotate", nil); !errors.Is(err, logical.ErrReadOnly) {
				t.Errorf("rotate: %v, want ErrReadOnly", err)
			}
			if _, err := e.request(logical.UpdateOperation, "config", map[string]any{"refresh_margin": "5m"}); !errors.Is(err, logical.ErrReadOnly) {
				t.Errorf("config write: %v, want ErrReadOnly", err)
			}
			if n := e.sim.Calls(concurtest.EndpointToken); n != 0 {
				t.Errorf("%d token calls from a node that may not write", n)
			}
		})
	}
}

func TestStandbyServesFreshTokenLocally(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.asReplicationState(consts.ReplicationPerformanceStandby, false)
	e.storage.set(0, true)
	if c := e.creds(); c["access_token"] == "" {
		t.Errorf("a standby with a fresh token did not serve it")
	}
}

func TestStorageFailureAfterRotationIsRetriedNotDropped(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.clock.Advance(55 * time.Minute)

	e.storage.failAfterMarker(1) // the write after the refresh fails
	_, err := e.request(logical.UpdateOperation, "rotate", nil)
	if err == nil || !strings.Contains(err.Error(), "storage unavailable") {
		t.Fatalf("rotate with failing storage: %v, want the storage error surfaced", err)
	}
	newest := e.sim.CurrentRefreshToken(testClientID, testCompany)
	var st companyEntry
	_, _ = getJSON(t.Context(), e.storage, defaultCompanyKey, &st)
	if st.Token.RefreshToken == newest {
		t.Fatalf("test setup: storage was expected to hold the older token")
	}
	// The newest token is not served before it is stored.
	if cfg := e.mustOK(logical.ReadOperation, "config", nil).Data; cfg["status"] != statusDegraded {
		t.Errorf("config status %v while tokens are unsaved, want degraded", cfg["status"])
	}

	// The next periodic run writes the kept tokens first, without calling Concur.
	calls := e.sim.Calls(concurtest.EndpointToken)
	if err := e.periodic(); err != nil {
		t.Fatalf("periodic: %v", err)
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("the retry called Concur instead of storing the kept tokens")
	}
	_, _ = getJSON(t.Context(), e.storage, defaultCompanyKey, &st)
	if st.Token.RefreshToken != newest {
		t.Errorf("storage does not hold the newest refresh token after the retry")
	}
	if c := e.creds(); c["access_token"] != st.Token.AccessToken {
		t.Errorf("creds does not serve the stored token")
	}
	if n := e.sim.ErrorCount(108); n != 0 {
		t.Errorf("invalid_grant answers: %d", n)
	}
}

func TestUnsavedTokensSurviveCacheInvalidation(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.storage.failAfterMarker(1)
	_, _ = e.request(logical.UpdateOperation, "rotate", nil)
	e.b.invalidate(t.Context(), defaultCompanyKey)
	if e.b.defaultEntry().Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, testCompany) {
		t.Errorf("invalidation dropped the only copy of the newest refresh token")
	}
}
