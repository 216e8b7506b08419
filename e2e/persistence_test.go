package e2e

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Group 4: with raft storage, a restarted and unsealed Vault serves creds without a new
// bootstrap; `vault plugin reload` keeps it working; registering v0.1.1 and switching the
// mount to it keeps the stored token.
func TestPersistenceAndUpgrade(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageRaft)
	SetupPlugin(t, mountPath, n)
	s.bootstrap(t, n.Client, mountPath)
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

	// Restart + unseal: the stored token is served again.
	n.Restart()
	n.Unseal()
	n.WaitActive()
	if got := accessToken(readCreds(t, n.Client, mountPath, 0)); got != tok {
		t.Error("after restart creds returned a different access token (stored token lost or needlessly refreshed)")
	}
	noNewBootstrap("after restart")
	// The stored refresh token works after the restart too.
	rotateChecked(t, s, n.Client, mountPath)
	tok = accessToken(readCreds(t, n.Client, mountPath, 0))

	// Plugin reload, by plugin name and by mount.
	reload := func(in *api.ReloadPluginInput) {
		t.Helper()
		if _, err := n.Client.Sys().ReloadPluginWithContext(ctxT(t, time.Minute), in); err != nil {
			t.Fatalf("plugin reload %+v: %v", in, err)
		}
	}
	reload(&api.ReloadPluginInput{Plugin: pluginName})
	if got := accessToken(readCreds(t, n.Client, mountPath, 0)); got != tok {
		t.Error("after plugin reload creds returned a different access token")
	}
	reload(&api.ReloadPluginInput{Mounts: []string{mountPath + "/"}})
	readCreds(t, n.Client, mountPath, 0)
	noNewBootstrap("after plugin reload")

	// Upgrade: register v0.1.1 (a different binary, so a different SHA-256), tune, reload.
	const cmdV2 = pluginName + "-" + pluginV2
	sha2 := InstallPlugin(t, pluginBinV2Path(t), cmdV2, n)
	if sha2 == fileSHA256(t, pluginBin(t)) {
		t.Fatal("the v0.1.1 binary is identical to v0.1.0 (was it built with VERSION=v0.1.1?)")
	}
	RegisterPlugin(t, n.Client, cmdV2, sha2, pluginV2)
	v := pluginV2
	if err := n.Client.Sys().TuneMountAllowNil(mountPath, api.TuneMountConfigInput{PluginVersion: &v}); err != nil {
		t.Fatalf("secrets tune -plugin-version=%s: %v", pluginV2, err)
	}
	reload(&api.ReloadPluginInput{Mounts: []string{mountPath + "/"}})
	m, err := n.Client.Sys().GetMount(mountPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.PluginVersion != pluginV2 || m.RunningVersion != pluginV2 {
		t.Fatalf("after upgrade: plugin_version=%q running_plugin_version=%q, want %s", m.PluginVersion, m.RunningVersion, pluginV2)
	}
	if got := accessToken(readCreds(t, n.Client, mountPath, 0)); got != tok {
		t.Error("after upgrade creds returned a different access token")
	}
	noNewBootstrap("after upgrade")
	rotateChecked(t, s, n.Client, mountPath)

	// And the upgraded mount survives another restart.
	n.Restart()
	n.Unseal()
	n.WaitActive()
	readCreds(t, n.Client, mountPath, 0)
	if m, err := n.Client.Sys().GetMount(mountPath); err != nil || m.RunningVersion != pluginV2 {
		t.Fatalf("after restart: running_plugin_version=%v (%v), want %s", m, err, pluginV2)
	}
	noNewBootstrap("after upgrade and restart")
	if got := s.ErrorCount(108); got != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times", got)
	}
}

// rotateChecked forces a refresh through c and checks at the simulator that it was served
// with the then-current refresh token exactly once.
func rotateChecked(t testing.TB, s *sim, c *api.Client, mount string) {
	t.Helper()
	before := s.currentRefresh()
	uses := s.RefreshTokenUses(before)
	grants := s.GrantCalls("refresh_token")
	if _, err := rotate(c, mount); err != nil {
		t.Fatalf("write -f %s/rotate: %v", mount, err)
	}
	if got := s.GrantCalls("refresh_token"); got != grants+1 {
		t.Errorf("rotate made %d refresh grants, want 1", got-grants)
	}
	if got := s.RefreshTokenUses(before) - uses; got != 1 {
		t.Errorf("rotate used the then-current refresh token %d times, want 1", got)
	}
	if s.CurrentRotation() == concurtest.RotationRotate && s.currentRefresh() == before {
		t.Error("rotate: the simulator's current refresh token did not change")
	}
}
