package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Group 4: a mount bootstrapped by the released v0.1.0 plugin (its single storage entry
// holding settings and tokens), with a live token under strict rotation, is switched to
// this build (one entry for the app, one per company): the same access token is served,
// the default company shows it, rotate works, nothing is bootstrapped again; restarts and
// `vault plugin reload` keep serving it (raft storage).
func TestPersistenceAndUpgrade(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageRaft)

	// The v0.1.0 binary, registered and enabled as operators did with that release.
	const cmdV010 = pluginName + "-" + pluginV010
	shaOld := InstallPlugin(t, pluginBinV010Path(t), cmdV010, n)
	RegisterPlugin(t, n.Client, cmdV010, shaOld, pluginV010)
	EnablePlugin(t, n.Client, mountPath, pluginV010)
	wantRunning(t, n, pluginV010)
	// It is the old code: it has no companies/ paths.
	if st, body := rawGet(t, n.Client, mountPath+"/companies/default"); st != 404 || !strings.Contains(body, "unsupported path") {
		t.Fatalf("v0.1.0: read concur/companies/default: %d %s, want 404 unsupported path", st, body)
	}
	s.bootstrap(t, n.Client, mountPath)
	rotateChecked(t, s, n.Client, mountPath) // the stored refresh token is the rotated one
	tok := accessToken(readCreds(t, n.Client, mountPath, 0))

	noNewBootstrap := func(when string) {
		t.Helper()
		if got := s.GrantCalls("password"); got != 1 {
			t.Fatalf("%s: %d password grants, want 1 (a new bootstrap happened)", when, got)
		}
		if st := readConfig(t, n.Client, mountPath)["status"]; st != "ok" {
			t.Fatalf("%s: config status %v, want ok", when, st)
		}
	}
	reload := func(in *api.ReloadPluginInput) {
		t.Helper()
		if _, err := n.Client.Sys().ReloadPluginWithContext(ctxT(t, time.Minute), in); err != nil {
			t.Fatalf("plugin reload %+v: %v", in, err)
		}
	}

	// Upgrade: register this build (another binary, another SHA-256), tune, reload.
	shaCur := InstallPlugin(t, pluginBin(t), pluginName, n)
	if shaCur == shaOld {
		t.Fatal("the current plugin binary is identical to v0.1.0")
	}
	RegisterPlugin(t, n.Client, pluginName, shaCur, pluginVersion)
	v := pluginVersion
	if err := n.Client.Sys().TuneMountAllowNil(mountPath, api.TuneMountConfigInput{PluginVersion: &v}); err != nil {
		t.Fatalf("secrets tune -plugin-version=%s: %v", pluginVersion, err)
	}
	reload(&api.ReloadPluginInput{Mounts: []string{mountPath + "/"}})
	wantRunning(t, n, pluginVersion)
	if got := accessToken(readCreds(t, n.Client, mountPath, 0)); got != tok {
		t.Error("after the upgrade creds returned a different access token (stored token lost or needlessly refreshed)")
	}
	noNewBootstrap("after upgrade")
	checkUpgradedDefault(t, s, n.Client, tok)
	rollBackAndForward(t, s, n, tok)
	rotateChecked(t, s, n.Client, mountPath)
	tok = accessToken(readCreds(t, n.Client, mountPath, 0))

	// Restart + unseal: the upgraded layout is served again.
	n.Restart()
	n.Unseal()
	n.WaitActive()
	wantRunning(t, n, pluginVersion)
	if got := accessToken(readCreds(t, n.Client, mountPath, 0)); got != tok {
		t.Error("after restart creds returned a different access token")
	}
	noNewBootstrap("after upgrade and restart")
	rotateChecked(t, s, n.Client, mountPath)
	tok = accessToken(readCreds(t, n.Client, mountPath, 0))

	// Plugin reload, by plugin name and by mount.
	reload(&api.ReloadPluginInput{Plugin: pluginName})
	if got := accessToken(readCreds(t, n.Client, mountPath, 0)); got != tok {
		t.Error("after plugin reload creds returned a different access token")
	}
	reload(&api.ReloadPluginInput{Mounts: []string{mountPath + "/"}})
	if got := accessToken(readCreds(t, n.Client, mountPath+"/companies/default", 0)); got != tok {
		t.Error("after mount reload companies/default/creds returned a different access token")
	}
	noNewBootstrap("after plugin reload")
	if got := s.ErrorCount(108); got != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times", got)
	}
}

// rollBackAndForward switches an upgraded mount back to v0.1.0 and forward again: v0.1.0
// does not know the new layout (it sees no configuration and calls nobody), and the token
// is still there when this build runs again.
func rollBackAndForward(t testing.TB, s *sim, n *Node, tok string) {
	t.Helper()
	switchTo := func(version string) {
		t.Helper()
		if err := n.Client.Sys().TuneMountAllowNil(mountPath, api.TuneMountConfigInput{PluginVersion: &version}); err != nil {
			t.Fatalf("secrets tune -plugin-version=%s: %v", version, err)
		}
		if _, err := n.Client.Sys().ReloadPluginWithContext(ctxT(t, time.Minute),
			&api.ReloadPluginInput{Mounts: []string{mountPath + "/"}}); err != nil {
			t.Fatalf("plugin reload after switching to %s: %v", version, err)
		}
		wantRunning(t, n, version)
	}
	calls := s.Calls(concurtest.EndpointToken)
	switchTo(pluginV010)
	if _, err := n.Client.Logical().Read(mountPath + "/creds"); err == nil || !strings.Contains(errText(err), "not configured") {
		t.Errorf("v0.1.0 on the upgraded layout: creds answered %v, want 'not configured'", err)
	}
	switchTo(pluginVersion)
	if got := accessToken(readCreds(t, n.Client, mountPath, 0)); got != tok {
		t.Error("after going back to v0.1.0 and forward again creds returned a different access token")
	}
	if got := s.Calls(concurtest.EndpointToken) - calls; got != 0 {
		t.Errorf("going back to v0.1.0 and forward again made %d token calls", got)
	}
}

func wantRunning(t testing.TB, n *Node, version string) {
	t.Helper()
	m, err := n.Client.Sys().GetMount(mountPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.PluginVersion != version || m.RunningVersion != version {
		t.Fatalf("plugin_version=%q running_plugin_version=%q, want %s", m.PluginVersion, m.RunningVersion, version)
	}
}

// checkUpgradedDefault: v0.1.0's company is the default company of the new layout.
func checkUpgradedDefault(t testing.TB, s *sim, c *api.Client, tok string) {
	t.Helper()
	sec, err := c.Logical().Read(mountPath + "/companies/default")
	if err != nil || sec == nil {
		t.Fatalf("read companies/default after the upgrade: %v (%v)", sec, err)
	}
	want := map[string]any{"company_uuid": s.Company, "status": "ok", "refresh_token_set": true, "prewarm": true, "geolocation": s.URL}
	for k, v := range want {
		if sec.Data[k] != v {
			t.Errorf("companies/default %s = %v, want %v", k, sec.Data[k], v)
		}
	}
	if got := accessToken(readCreds(t, c, mountPath+"/companies/default", 0)); got != tok {
		t.Error("companies/default/creds serves another token than creds")
	}
	list, err := c.Logical().List(mountPath + "/companies")
	if err != nil || list == nil {
		t.Fatalf("list companies after the upgrade: %v (%v)", list, err)
	}
	if keys, _ := list.Data["keys"].([]any); len(keys) != 1 || keys[0] != "default" {
		t.Errorf("list companies after the upgrade = %v, want [default]", list.Data["keys"])
	}
}

// rotateChecked forces a refresh of the default company through c and checks at the
// simulator that it was served with the then-current refresh token exactly once.
func rotateChecked(t testing.TB, s *sim, c *api.Client, mount string) {
	t.Helper()
	rotateCheckedAt(t, s, c, mount, s.Company)
}

// rotateCheckedAt is rotateChecked for the company with companyUUID at prefix (the mount
// for the default company, <mount>/companies/<name> for a named one).
func rotateCheckedAt(t testing.TB, s *sim, c *api.Client, prefix, companyUUID string) {
	t.Helper()
	before := s.CurrentRefreshToken(s.ClientID, companyUUID)
	uses := s.RefreshTokenUses(before)
	grants := s.GrantCalls("refresh_token")
	if _, err := rotate(c, prefix); err != nil {
		t.Fatalf("write -f %s/rotate: %v", prefix, err)
	}
	if got := s.GrantCalls("refresh_token"); got != grants+1 {
		t.Errorf("%s/rotate made %d refresh grants, want 1", prefix, got-grants)
	}
	if got := s.RefreshTokenUses(before) - uses; got != 1 {
		t.Errorf("%s/rotate used the then-current refresh token %d times, want 1", prefix, got)
	}
	if s.CurrentRotation() == concurtest.RotationRotate && s.CurrentRefreshToken(s.ClientID, companyUUID) == before {
		t.Errorf("%s/rotate: the simulator's current refresh token did not change", prefix)
	}
}
