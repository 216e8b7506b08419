package backend

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// v010Entry is what v0.1.0 stored under "config" for a mount bootstrapped
// with the simulator's current tokens for the test company.
func (e *testEnv) v010Entry(token tokenEntry) *legacyState {
	return &legacyState{
		Config: legacyConfig{appEntry: appEntry{ClientID: testClientID, ClientSecret: testClientSecret, BaseURL: e.sim.URL,
			AllowedHosts: []string{"http://127.0.0.1:*"}, RefreshMargin: defaultRefreshMargin}, CompanyUUID: testCompany},
		Token: token,
	}
}

// asV010Layout turns the bootstrapped mount's storage into v0.1.0's single
// entry, holding the same tokens, and returns the default company it had.
func (e *testEnv) asV010Layout() companyEntry {
	e.t.Helper()
	live := *e.b.defaultEntry()
	for _, k := range []string{appStorageKey, defaultCompanyKey} {
		_ = e.storage.Delete(context.Background(), k)
	}
	if err := putJSON(context.Background(), e.storage, legacyStorageKey, e.v010Entry(live.Token)); err != nil {
		e.t.Fatal(err)
	}
	return live
}

// A mount written by v0.1.0 is upgraded on first load: the live token is
// served as it was, the refresh token still works under strict rotation,
// and the old entry is gone.
func TestUpgradeFromV010Layout(t *testing.T) {
	old := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	old.bootstrap()
	live := *old.b.defaultEntry()

	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.sim = old.sim // the same Concur
	e.b.httpClient = old.b.httpClient
	if err := putJSON(context.Background(), e.storage, legacyStorageKey, e.v010Entry(live.Token)); err != nil {
		t.Fatal(err)
	}
	if got := e.creds()["access_token"]; got != live.Token.AccessToken {
		t.Errorf("after the upgrade creds served another access token")
	}
	if raw, _ := e.storage.Get(context.Background(), legacyStorageKey); raw != nil {
		t.Errorf("the v0.1.0 entry is still there")
	}
	var app appEntry
	if found, _ := getJSON(context.Background(), e.storage, appStorageKey, &app); !found || app.ClientSecret != testClientSecret {
		t.Errorf("app entry after the upgrade: found=%v", found)
	}
	co, found := storedCompany(e.storage, defaultCompanyName)
	if !found || co.CompanyUUID != testCompany || !co.Prewarm || co.Token.RefreshToken != live.Token.RefreshToken {
		t.Fatalf("default company after the upgrade: found=%v uuid=%s prewarm=%v", found, co.CompanyUUID, co.Prewarm)
	}
	e.mustOK(logical.UpdateOperation, "rotate", nil)
	if e.b.defaultEntry().Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, testCompany) {
		t.Errorf("the upgraded refresh token did not rotate into Concur's newest")
	}
	if st := e.mustOK(logical.ReadOperation, "config", nil).Data; st["status"] != statusOK || st["company_uuid"] != testCompany {
		t.Errorf("config after the upgrade: %v", st)
	}
}

// An upgrade interrupted after the company was written is finished by the
// next load, which keeps the newer of the two tokens; an old instance's
// grant still in flight is waited for.
func TestUpgradeResumesAndKeepsTheNewerToken(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	newer := *e.b.defaultEntry()
	older := newer.Token
	older.RefreshToken, older.LastRefreshAt = "rt-older", newer.Token.LastRefreshAt.Add(-time.Hour)
	s := e.storage
	_ = s.Delete(context.Background(), appStorageKey)
	if err := putJSON(context.Background(), s, legacyStorageKey, e.v010Entry(older)); err != nil {
		t.Fatal(err)
	}
	fresh := e.newInstance()
	if _, err := requestOn(fresh, s, logical.ReadOperation, "creds", nil); err != nil {
		t.Fatal(err)
	}
	if co, _ := storedCompany(s, defaultCompanyName); co.Token.RefreshToken != newer.Token.RefreshToken {
		t.Errorf("the resumed upgrade replaced the newer stored token by v0.1.0's older one")
	}

	// An old instance's live marker on the v0.1.0 entry: no upgrade until it
	// ends, but the mount's paths go on meanwhile (the default company is
	// served from memory, as on a node that may not write).
	live := newer.Token
	live.LastRefreshAt = newer.Token.LastRefreshAt.Add(time.Minute)
	live.Grant = &grantMarker{RefreshToken: tokenFingerprint(live.RefreshToken), Until: e.clock.Now().Add(time.Minute), Instance: "v010"}
	if err := putJSON(context.Background(), s, legacyStorageKey, e.v010Entry(live)); err != nil {
		t.Fatal(err)
	}
	third := e.newInstance()
	if _, err := requestOn(third, s, logical.ReadOperation, "creds", nil); err != nil {
		t.Errorf("creds while v0.1.0's grant is in flight: %v, want the still-valid token", err)
	}
	if resp, err := requestOn(third, s, logical.ListOperation, "companies/", nil); err != nil || fmt.Sprint(resp.Data["keys"]) != "[default]" {
		t.Errorf("list while v0.1.0's grant is in flight: %v %v", resp, err)
	}
	if raw, _ := s.Get(context.Background(), legacyStorageKey); raw == nil {
		t.Errorf("the v0.1.0 entry was upgraded under a live marker")
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := requestOn(third, s, logical.ReadOperation, "creds", nil); err != nil {
		t.Errorf("creds after the old grant's deadline: %v", err)
	}
	if raw, _ := s.Get(context.Background(), legacyStorageKey); raw != nil {
		t.Errorf("the v0.1.0 entry is still there")
	}
}

// A node that may not write (a performance standby) serves a v0.1.0 mount
// from memory without upgrading it.
func TestReadOnlyNodeServesV010LayoutUnchanged(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	live := e.asV010Layout()
	s := e.storage
	standby := e.newInstance()
	e.asReplicationState(consts.ReplicationPerformanceStandby, false)
	resp, err := requestOn(standby, s, logical.ReadOperation, "creds", nil)
	if err != nil || resp.Data["access_token"] != live.Token.AccessToken {
		t.Fatalf("standby creds on the v0.1.0 layout: %v", err)
	}
	if raw, _ := s.Get(context.Background(), legacyStorageKey); raw == nil {
		t.Errorf("a read-only node upgraded storage")
	}
}
