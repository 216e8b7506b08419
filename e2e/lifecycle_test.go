package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
	"github.com/hashicorp/vault/api"
)

// Group 1: enable; bootstrap by request token and by refresh token; creds; profile by id and
// by user_name; rotate; config read shows no secret; delete.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	c := n.Client

	// Not configured yet.
	_, err := c.Logical().Read("concur/creds")
	re := wantStatus(t, err, 400, "creds before config")
	if !strings.Contains(errText(re), "not configured") {
		t.Errorf("creds before config: want an error saying %q, got %q", "not configured", errText(re))
	}

	reqTok, creds1 := lifecycleBootstrap(t, s, c)
	lifecycleProfile(t, s, c)
	rtBefore, rtAfter, creds2 := lifecycleRotate(t, s, c, creds1)
	secrets := map[string]string{
		"client secret": s.ClientSecret, "request token": reqTok, "refresh token": rtAfter,
		"old refresh token": rtBefore, "access token": accessToken(creds2), "old access token": accessToken(creds1),
	}
	lifecycleConfigRead(t, s, c, secrets)
	company2 := lifecycleRefreshTokenBootstrap(t, s, c)
	lifecycleDelete(t, s, c, company2)
}

// mount2 is the second mount, bootstrapped by a refresh token.
const mount2 = "concur-rt"

// lifecycleBootstrap bootstraps concur/ with a company request token and checks the first creds.
func lifecycleBootstrap(t *testing.T, s *sim, c *api.Client) (reqTok string, creds1 *api.Secret) {
	t.Helper()
	// Bootstrap with a company request token.
	reqTok = s.bootstrap(t, c, mountPath)
	if got := s.GrantCalls("password"); got != 1 {
		t.Errorf("password grants after bootstrap = %d, want 1", got)
	}
	creds1 = readCreds(t, c, mountPath, 0)
	if tt, _ := creds1.Data["token_type"].(string); !strings.EqualFold(tt, "bearer") {
		t.Errorf("token_type = %q, want Bearer", tt)
	}
	if got := fmt.Sprint(creds1.Data["company_uuid"]); got != s.Company {
		t.Errorf("creds company_uuid = %q, want %q", got, s.Company)
	}
	if ttl, ok := asInt(creds1.Data["ttl"]); !ok || ttl <= 0 || ttl > 3600 {
		t.Errorf("creds ttl = %v, want 1..3600", creds1.Data["ttl"])
	}
	if exp, err := time.Parse(time.RFC3339, fmt.Sprint(creds1.Data["expires_at"])); err != nil || time.Until(exp) <= 0 {
		t.Errorf("creds expires_at = %v (%v), want a future RFC 3339 time", creds1.Data["expires_at"], err)
	}
	// A second read serves the same still-valid token without calling Concur.
	grants := s.GrantCalls("password") + s.GrantCalls("refresh_token")
	if got := accessToken(readCreds(t, c, mountPath, 0)); got != accessToken(creds1) {
		t.Error("second creds read returned a different access token without a refresh")
	}
	if got := s.GrantCalls("password") + s.GrantCalls("refresh_token"); got != grants {
		t.Errorf("second creds read made %d token grants", got-grants)
	}

	// min_ttl below what is left on a fresh one-hour token does not refresh.
	if got := accessToken(readCreds(t, c, mountPath, 600)); got != accessToken(creds1) {
		t.Error("creds min_ttl=600 refreshed a fresh token")
	}
	if got := s.GrantCalls("password") + s.GrantCalls("refresh_token"); got != grants {
		t.Errorf("creds min_ttl=600 made %d token grants", got-grants)
	}
	return reqTok, creds1
}

// lifecycleProfile reads a profile by id and by user_name, and the 400 and 404 answers.
func lifecycleProfile(t *testing.T, s *sim, c *api.Client) {
	t.Helper()
	// Profile by id and by user_name.
	users := s.Users(s.Company)
	if len(users) < 3 {
		t.Fatalf("simulator has %d users", len(users))
	}
	u := users[2]
	prof, err := c.Logical().Read("concur/profile/" + u.ID)
	if err != nil || prof == nil {
		t.Fatalf("read concur/profile/%s: %v", u.ID, err)
	}
	if pu, _ := prof.Data["user"].(map[string]any); pu["id"] != u.ID || pu["userName"] != u.UserName {
		t.Errorf("profile by id: got user %v, want id %s userName %s", prof.Data, u.ID, u.UserName)
	}
	list, err := c.Logical().ReadWithData("concur/profile", map[string][]string{"user_name": {u.UserName}})
	if err != nil || list == nil {
		t.Fatalf("read concur/profile user_name=%s: %v", u.UserName, err)
	}
	found, _ := list.Data["users"].([]any)
	if fmt.Sprint(list.Data["total_results"]) != "1" || len(found) != 1 {
		t.Fatalf("profile by user_name: total_results=%v users=%d, want 1", list.Data["total_results"], len(found))
	}
	if m, _ := found[0].(map[string]any); m["id"] != u.ID {
		t.Errorf("profile by user_name: got id %v, want %s", m["id"], u.ID)
	}
	_, err = c.Logical().Read("concur/profile/not-a-uuid")
	re := wantStatus(t, err, 400, "profile with a non-UUID id")
	if !strings.Contains(errText(re), "id") {
		t.Errorf("non-UUID profile id: error does not name the field: %q", errText(re))
	}
	// Logical().Read hides 404s (nil secret, nil error), so look at the raw status.
	if st, body := rawGet(t, c, "concur/profile/"+randUUID()); st != 404 {
		t.Errorf("profile of an unknown user: HTTP %d %s, want 404", st, body)
	}
}

// lifecycleRotate rotates once and returns the refresh tokens before and after, and the new creds.
func lifecycleRotate(t *testing.T, s *sim, c *api.Client, creds1 *api.Secret) (rtBefore, rtAfter string, creds2 *api.Secret) {
	t.Helper()
	// Rotate: one refresh grant with the current refresh token; a new access token.
	rtBefore = s.currentRefresh()
	rot, err := rotate(c, mountPath)
	if err != nil {
		t.Fatalf("write concur/rotate: %v", err)
	}
	if rot == nil || rot.Data["access_token_expires_at"] == nil {
		t.Fatalf("rotate: no access_token_expires_at in %v", rot)
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if _, ok := rot.Data[k]; ok {
			t.Errorf("rotate response carries %q", k)
		}
	}
	if got := s.GrantCalls("refresh_token"); got != 1 {
		t.Errorf("refresh grants after rotate = %d, want 1", got)
	}
	if got := s.RefreshTokenUses(rtBefore); got != 1 {
		t.Errorf("the refresh token current before rotate was used %d times, want 1", got)
	}
	rtAfter = s.currentRefresh()
	if rtAfter == rtBefore {
		t.Error("simulator (rotation=rotate) did not issue a new refresh token")
	}
	creds2 = readCreds(t, c, mountPath, 0)
	if accessToken(creds2) == accessToken(creds1) {
		t.Error("creds after rotate returned the old access token")
	}
	return rtBefore, rtAfter, creds2
}

// lifecycleConfigRead: the config read shows none of the secrets and the expected status fields.
func lifecycleConfigRead(t *testing.T, s *sim, c *api.Client, secrets map[string]string) {
	t.Helper()
	// Config read: no secret, the expected status fields.
	cfg := readConfig(t, c, mountPath)
	mustNotContain(t, "concur/config", cfg, secrets)
	for _, k := range []string{"client_secret", "request_token", "refresh_token", "access_token"} {
		if _, ok := cfg[k]; ok {
			t.Errorf("config read returns %q", k)
		}
	}
	wantCfg := map[string]any{
		"client_id": s.ClientID, "company_uuid": s.Company, "base_url": s.URL, "status": "ok",
		"client_secret_set": true, "refresh_token_set": true, "last_error": "",
	}
	for k, v := range wantCfg {
		if cfg[k] != v {
			t.Errorf("config %s = %#v, want %#v", k, cfg[k], v)
		}
	}
	for _, k := range []string{"access_token_expires_at", "last_refresh_at"} {
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(cfg[k])); err != nil {
			t.Errorf("config %s = %v, want RFC 3339", k, cfg[k])
		}
	}
}

// lifecycleRefreshTokenBootstrap bootstraps mount2 for a second company by a refresh token; it returns the company.
func lifecycleRefreshTokenBootstrap(t *testing.T, s *sim, c *api.Client) string {
	t.Helper()
	// Bootstrap by refresh token, on a second mount and company.
	company2 := randUUID()
	s.AddCompany(company2, "")
	EnablePlugin(t, c, mount2, pluginVersion)
	seeded := s.NewRefreshToken(s.ClientID, company2)
	_, err := c.Logical().Write(mount2+"/config", s.configData(map[string]any{"company_uuid": company2, "refresh_token": seeded}))
	if err != nil {
		t.Fatalf("write %s/config with refresh_token: %v", mount2, err)
	}
	if got := s.RefreshTokenUses(seeded); got != 1 {
		t.Errorf("seeded refresh token used %d times during bootstrap, want 1", got)
	}
	if got := s.GrantCalls("password"); got != 1 {
		t.Errorf("refresh-token bootstrap made a password grant (total %d)", got)
	}
	c2 := readCreds(t, c, mount2, 0)
	if fmt.Sprint(c2.Data["company_uuid"]) != company2 {
		t.Errorf("%s/creds company_uuid = %v, want %s", mount2, c2.Data["company_uuid"], company2)
	}
	cfg2 := readConfig(t, c, mount2)
	mustNotContain(t, mount2+"/config", cfg2, map[string]string{"seeded refresh token": seeded,
		"refresh token": s.CurrentRefreshToken(s.ClientID, company2), "client secret": s.ClientSecret})
	return company2
}

// lifecycleDelete: delete forgets settings and tokens; with revoke=true it also disconnects at Concur.
func lifecycleDelete(t *testing.T, s *sim, c *api.Client, company2 string) {
	t.Helper()
	// Delete: settings and tokens are gone.
	if _, err := c.Logical().Delete("concur/config"); err != nil {
		t.Fatalf("delete concur/config: %v", err)
	}
	_, err := c.Logical().Read("concur/creds")
	re := wantStatus(t, err, 400, "creds after delete")
	if !strings.Contains(errText(re), "not configured") {
		t.Errorf("creds after delete: want %q, got %q", "not configured", errText(re))
	}
	if sec, err := c.Logical().Read("concur/config"); err == nil && sec != nil && sec.Data["client_id"] != nil {
		t.Errorf("config still readable after delete: %v", sec.Data)
	}
	if s.currentRefresh() == "" {
		t.Error("plain delete revoked the connection at Concur")
	}
	// Delete with revoke=true also disconnects at Concur.
	if _, err := c.Logical().DeleteWithData(mount2+"/config", map[string][]string{"revoke": {"true"}}); err != nil {
		t.Fatalf("delete %s/config revoke=true: %v", mount2, err)
	}
	if got := s.Calls(concurtest.EndpointConnections); got != 1 {
		t.Errorf("connections endpoint calls = %d, want 1", got)
	}
	if rt := s.CurrentRefreshToken(s.ClientID, company2); rt != "" {
		t.Error("revoke=true left a valid refresh token at Concur")
	}
	_, err = c.Logical().Read(mount2 + "/creds")
	wantStatus(t, err, 400, mount2+" creds after delete")
}
