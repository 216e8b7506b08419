package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
	"github.com/hashicorp/vault/api"
)

// Group 6: while Concur answers 503 or 429 and the token is still valid, creds keep working
// with a warning; after a permanent error the engine needs a new bootstrap and says why.
func TestUpstreamTrouble(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	c := n.Client
	s.bootstrap(t, c, mountPath)
	tok := accessToken(readCreds(t, c, mountPath, 0))

	for _, f := range []struct {
		name   string
		fault  concurtest.Fault
		status string
	}{
		{"503", concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503}, "503"},
		{"429", concurtest.Fault{Kind: concurtest.FaultStatus, Status: 429, RetryAfter: "1"}, "429"},
	} {
		t.Run(f.name, func(t *testing.T) {
			tok = upstreamTransient(t, s, c, f.fault, f.status, tok)
		})
	}
	if got := s.ErrorCount(108); got != 0 {
		t.Fatalf("invalid_grant before the revocation: %d", got)
	}

	// Permanent error: the company admin disconnects the app at Concur.
	t.Run("revoked", func(t *testing.T) { upstreamRevoked(t, s, c) })
}

// upstreamTransient: while Concur answers status (fault) rotate fails naming it, creds serve the
// still-valid tok with a warning, and all recovers once the fault clears; it returns the new token.
func upstreamTransient(t *testing.T, s *sim, c *api.Client, fault concurtest.Fault, status, tok string) string {
	t.Helper()
	// Enough faults to outlast the client's retries.
	s.InjectFault(concurtest.EndpointToken, 50, fault)
	start := time.Now()
	_, err := rotate(c, mountPath)
	if err == nil {
		t.Fatalf("rotate while Concur answers %s succeeded", status)
	}
	t.Logf("rotate failed after %s: %s", time.Since(start).Round(time.Millisecond), errText(err))
	if !strings.Contains(errText(err), status) {
		t.Errorf("rotate error does not name Concur's status %s: %q", status, errText(err))
	}
	checkDegraded(t, c, status, tok)
	s.ClearFaults()

	// Recovery: the next refresh works and the warning goes away.
	rotateChecked(t, s, c, mountPath)
	sec := readCreds(t, c, mountPath, 0)
	if len(sec.Warnings) != 0 {
		t.Errorf("creds after recovery still warns: %q", sec.Warnings)
	}
	if st := readConfig(t, c, mountPath)["status"]; st != "ok" {
		t.Errorf("config status after recovery = %v, want ok", st)
	}
	return accessToken(sec)
}

// checkDegraded: creds still serve tok, warning with Concur's status, and config says degraded.
func checkDegraded(t *testing.T, c *api.Client, status, tok string) {
	t.Helper()
	sec := readCreds(t, c, mountPath, 0)
	t.Logf("creds during the fault: warnings %q", sec.Warnings)
	if accessToken(sec) != tok {
		t.Error("creds during the fault did not return the still-valid token")
	}
	if len(sec.Warnings) == 0 {
		t.Errorf("creds after a failed refresh (%s) has no warning", status)
	} else if !strings.Contains(strings.Join(sec.Warnings, " "), status) {
		t.Errorf("creds warning does not name Concur's status %s: %q", status, sec.Warnings)
	}
	cfg := readConfig(t, c, mountPath)
	if cfg["status"] != "degraded" {
		t.Errorf("config status during the fault = %v, want degraded", cfg["status"])
	}
	if le, _ := cfg["last_error"].(string); le == "" {
		t.Error("config last_error empty after a failed refresh")
	}
}

// upstreamRevoked: after a permanent error the engine needs a new bootstrap, says why, and stops calling Concur.
func upstreamRevoked(t *testing.T, s *sim, c *api.Client) {
	t.Helper()
	s.RevokeConnection(s.ClientID, s.Company)
	refreshes := s.GrantCalls("refresh_token")
	_, err := rotate(c, mountPath)
	if err == nil {
		t.Fatal("rotate after the connection was revoked succeeded")
	}
	t.Logf("rotate after revocation: %s", errText(err))
	if got := s.GrantCalls("refresh_token") - refreshes; got != 1 {
		t.Errorf("a permanent error was retried: %d refresh grants, want 1", got)
	}
	cfg := readConfig(t, c, mountPath)
	if cfg["status"] != "needs_bootstrap" {
		t.Errorf("config status after revocation = %v, want needs_bootstrap", cfg["status"])
	}
	if le, _ := cfg["last_error"].(string); le == "" {
		t.Error("config last_error empty after revocation")
	}
	_, err = c.Logical().Read("concur/creds")
	re := wantStatus(t, err, 503, "creds after revocation")
	msg := errText(re)
	t.Logf("creds after revocation: %s", msg)
	if !strings.Contains(msg, "108") && !strings.Contains(msg, "invalid_grant") {
		t.Errorf("creds error does not name Concur's error (108 / invalid_grant): %q", msg)
	}
	// Reading creds does not call Concur again until config is written again.
	grants := s.GrantCalls("refresh_token")
	_, _ = c.Logical().Read("concur/creds")
	if got := s.GrantCalls("refresh_token"); got != grants {
		t.Errorf("needs_bootstrap engine still called Concur (%d refresh grants)", got-grants)
	}

	// A new bootstrap brings it back.
	s.bootstrap(t, c, mountPath)
	readCreds(t, c, mountPath, 0)
	if st := readConfig(t, c, mountPath)["status"]; st != "ok" {
		t.Errorf("status after re-bootstrap = %v, want ok", st)
	}
}
