package backend

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// No read, by anyone, can make the engine call Concur more than a bounded
// number of times (issue 10, point 5).

func (e *testEnv) refreshGrants() int { return e.sim.GrantCalls("refresh_token") }

// An app without Identity scopes: every profile read is refused with 403.
// The engine renews once, then says which scope is missing instead of
// renewing per read (fails on main: one grant per read).
func TestPersistent403RenewsOncePerWindow(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.sim.AddClient(testClientID, testClientSecret, "openid") // no identity.user.* scope
	e.bootstrap()
	user := e.sim.Users(testCompany)[0]
	grants := e.refreshGrants()
	var last error
	for range 10 {
		e.clock.Advance(10 * time.Second)
		_, last = e.request(logical.ReadOperation, "profile/"+user.ID, nil)
		if last == nil {
			t.Fatal("profile read without Identity scopes succeeded")
		}
	}
	if got := e.refreshGrants() - grants; got != 1 {
		t.Errorf("%d refresh grants for 10 refused reads, want 1", got)
	}
	if codeOf(last) != http.StatusForbidden || !strings.Contains(last.Error(), "identity.user.core.read") {
		t.Errorf("repeated refusal: %v, want a 403 naming the missing scope", last)
	}
	// After the window one more renewal is allowed.
	e.clock.Advance(rejectedRenewalEvery)
	_, _ = e.request(logical.ReadOperation, "profile/"+user.ID, nil)
	if got := e.refreshGrants() - grants; got != 2 {
		t.Errorf("%d refresh grants after the window, want 2", got)
	}
	e.assertCustody()
}

// min_ttl cannot exceed what Concur actually issues: with 10-minute tokens,
// min_ttl=55m is capped so that reads do not each cause a grant (fails on
// main: every read renewed).
func TestMinTTLIsBoundedByConcursLifetime(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate, AccessTokenTTL: 10 * time.Minute})
	e.bootstrap()
	grants := e.refreshGrants()
	for range 20 {
		e.clock.Advance(10 * time.Second)
		resp := e.mustOK(logical.ReadOperation, "creds", map[string]any{"min_ttl": "55m"})
		if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "less than asked for") {
			t.Fatalf("warnings %q, want one saying the token has less than asked for", resp.Warnings)
		}
	}
	if got := e.refreshGrants() - grants; got != 0 {
		t.Errorf("%d refresh grants for 20 reads within 200 s of a 10-minute token, want 0", got)
	}
	// Reads alone renew at most once per readGrantSpacing (or half the lifetime).
	for range 60 {
		e.clock.Advance(10 * time.Second)
		e.mustOK(logical.ReadOperation, "creds", map[string]any{"min_ttl": "55m"})
	}
	if got := e.refreshGrants() - grants; got > 2 {
		t.Errorf("%d refresh grants for 10 minutes of min_ttl=55m reads, want at most 2", got)
	}
	e.assertCustody()
}

// A refresh token whose expiry Concur does not move out of the margin is
// renewed for its sake at most once a day, with a warning (fails on main: a
// grant on every periodic tick).
func TestRefreshTokenRenewalsAtMostDaily(t *testing.T) {
	if testing.Short() {
		t.Skip("two simulated days of ticks")
	}
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate, RefreshTokenTTL: 3 * 24 * time.Hour})
	e.bootstrap()
	grants := e.refreshGrants()
	const days = 2
	for range days * 24 * 60 {
		e.clock.Advance(time.Minute)
		if err := e.periodic(); err != nil {
			t.Fatalf("periodic: %v", err)
		}
	}
	// Access renewals every 50 minutes, plus one a day for the refresh token.
	want := days*24*60/50 + days + 1
	if got := e.refreshGrants() - grants; got > want {
		t.Errorf("%d refresh grants in %d days, want at most %d", got, days, want)
	}
	resp := e.mustOK(logical.ReadOperation, "creds", nil)
	if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "did not move the refresh token's expiry forward") {
		t.Errorf("warnings %q, want one saying Concur did not move the expiry forward", resp.Warnings)
	}
	e.assertCustody()
}

// Retry-After longer than the backoff cap is the next attempt time (fails
// on main: capped at 5 minutes); absurd values are capped at maxRetryAfter.
func TestRetryAfterSetsTheNextAttempt(t *testing.T) {
	for _, c := range []struct {
		retryAfter string
		wait       time.Duration
	}{{"1800", 30 * time.Minute}, {"86400", maxRetryAfter}} {
		t.Run(c.retryAfter, func(t *testing.T) {
			e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
			e.bootstrap()
			e.clock.Advance(52 * time.Minute) // due, still valid
			e.sim.InjectFault(concurtest.EndpointToken, 100, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 429, RetryAfter: c.retryAfter})
			start := e.clock.Now()
			_ = e.periodic()
			calls := e.sim.Calls(concurtest.EndpointToken)
			if next := e.b.defaultEntry().Token.NextAttemptAt; !next.Equal(start.Add(c.wait)) {
				t.Errorf("next attempt %s after the 429, want %s", next.Sub(start), c.wait)
			}
			for e.clock.Now().Before(start.Add(c.wait - time.Minute)) {
				e.clock.Advance(time.Minute)
				_ = e.periodic()
			}
			if e.sim.Calls(concurtest.EndpointToken) != calls {
				t.Errorf("Concur was called before the time Retry-After asked for")
			}
			e.sim.ClearFaults()
			e.clock.Advance(2 * time.Minute)
			if err := e.periodic(); err != nil {
				t.Fatalf("periodic after Retry-After: %v", err)
			}
			if e.sim.Calls(concurtest.EndpointToken) == calls {
				t.Errorf("no renewal once the Retry-After time had passed")
			}
		})
	}
}
