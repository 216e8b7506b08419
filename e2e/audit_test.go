package e2e

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Group 3: a full lifecycle with a file audit device and Vault at trace level leaves no
// access token, refresh token, request token or client secret in clear in the audit log or
// in Vault's log (which carries the plugin's log).
func TestAuditAndLogs(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageInmem)
	c := n.Client
	auditPath := filepath.Join(n.Dir, "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": auditPath},
	}); err != nil {
		t.Fatalf("enable file audit: %v", err)
	}
	SetupPlugin(t, mountPath, n)

	secrets := map[string]string{"client secret": s.ClientSecret}
	seen := 0
	remember := func(kind, v string) {
		if v == "" {
			return
		}
		for _, old := range secrets {
			if old == v {
				return
			}
		}
		seen++
		secrets[fmt.Sprintf("%s #%d", kind, seen)] = v
	}

	// A failed bootstrap: the unknown request token must not be echoed anywhere.
	bogus := "rt-bogus-" + randHex(16)
	remember("rejected request token", bogus)
	if _, err := c.Logical().Write("concur/config", s.configData(map[string]any{"request_token": bogus})); err == nil {
		t.Fatal("config write with an unknown request token succeeded")
	}

	remember("request token", s.bootstrap(t, c, mountPath))
	remember("refresh token", s.currentRefresh())
	for range 2 {
		remember("access token", accessToken(readCreds(t, c, mountPath, 0)))
	}
	users := s.Users(s.Company)
	if _, err := c.Logical().Read("concur/profile/" + users[0].ID); err != nil {
		t.Fatalf("profile by id: %v", err)
	}
	if _, err := c.Logical().ReadWithData("concur/profile", map[string][]string{"user_name": {users[1].UserName}}); err != nil {
		t.Fatalf("profile by user_name: %v", err)
	}
	if _, err := rotate(c, mountPath); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	remember("refresh token", s.currentRefresh())
	remember("access token", accessToken(readCreds(t, c, mountPath, 0)))
	if _, err := rotate(c, mountPath); err != nil {
		t.Fatalf("second rotate: %v", err)
	}
	remember("access token", accessToken(readCreds(t, c, mountPath, 60)))
	remember("refresh token", s.currentRefresh())
	readConfig(t, c, mountPath)

	// Re-bootstrap with a refresh token (write-only field on the request side).
	seeded := s.NewRefreshToken(s.ClientID, s.Company)
	remember("seeded refresh token", seeded)
	if _, err := c.Logical().Write("concur/config", s.configData(map[string]any{"refresh_token": seeded})); err != nil {
		t.Fatalf("config with refresh_token: %v", err)
	}
	remember("refresh token", s.currentRefresh())
	remember("access token", accessToken(readCreds(t, c, mountPath, 0)))

	// A transient upstream failure (its error text ends up in warnings and last_error).
	s.InjectFault(concurtest.EndpointToken, 20, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	if _, err := rotate(c, mountPath); err == nil {
		t.Error("rotate during a 503 fault succeeded")
	}
	s.ClearFaults()
	remember("access token", accessToken(readCreds(t, c, mountPath, 0)))
	readConfig(t, c, mountPath)

	if _, err := c.Logical().DeleteWithData("concur/config", map[string][]string{"revoke": {"true"}}); err != nil {
		t.Fatalf("delete config revoke=true: %v", err)
	}
	if len(secrets) < 8 {
		t.Fatalf("collected only %d distinct secrets; the lifecycle did not run as expected", len(secrets))
	}

	// Stop Vault so that every log line is flushed, then search the files.
	n.Stop()
	audit, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"path":"concur/creds"`, `"path":"concur/config"`, "hmac-sha256:"} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log has no %s: the audit device did not record the lifecycle", want)
		}
	}
	vlog, err := os.ReadFile(n.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(vlog), pluginName) {
		t.Errorf("vault.log never mentions %s: plugin logs did not reach Vault's log", pluginName)
	}
	// Positive control: the search does find a value that is in the log.
	if hits := grepSecrets(t, n.LogPath, map[string]string{"plugin directory": n.PluginDir}); len(hits) == 0 {
		t.Fatal("positive control failed: the plugin directory path is not found in vault.log")
	}
	// Also look for encoded forms (base64 of a []byte, URL-encoding of a form body) and for
	// the signature part of JWT access tokens on its own.
	variants := map[string]string{}
	for name, v := range secrets {
		variants[name] = v
		variants[name+" (base64)"] = base64.StdEncoding.EncodeToString([]byte(v))
		variants[name+" (base64url)"] = base64.RawURLEncoding.EncodeToString([]byte(v))
		if q := url.QueryEscape(v); q != v {
			variants[name+" (url-encoded)"] = q
		}
		if parts := strings.Split(v, "."); len(parts) == 3 && len(parts[2]) >= 16 {
			variants[name+" (JWT signature)"] = parts[2]
		}
	}
	var leaks []string
	leaks = append(leaks, grepSecrets(t, auditPath, variants)...)
	leaks = append(leaks, grepSecrets(t, n.LogPath, variants)...)
	for _, l := range leaks {
		t.Error(l)
	}
	t.Logf("searched audit.log (%d bytes) and vault.log (%d bytes) for %d secrets", len(audit), len(vlog), len(secrets))
}
