package e2e

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Issue 10, point 9: refresh-token custody on real Vault. Strict rotation (a
// token presented twice is dead), 75-second access tokens, and Concur's
// token answers held 3 s: operators' rotate calls that give up after 1 s,
// `vault plugin reload` and a raft leader step-down while a grant is in
// flight, three rounds. Afterwards creds are served, status is ok, and the
// simulator never saw a dead refresh token (code 108) nor a new bootstrap.
func TestCustodyUnderInterruptions(t *testing.T) {
	t.Parallel()
	const hold = 3 * time.Second
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate, AccessTokenTTL: 75 * time.Second})
	cl := StartRaftCluster(t, 3)
	active := cl.Active()
	SetupPlugin(t, mountPath, append([]*Node{active}, cl.Standbys(active)...)...)
	rt := s.NewRequestToken(s.ClientID, s.Company)
	if _, err := active.Client.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/config",
		s.configData(map[string]any{"request_token": rt, "refresh_margin": "1m"})); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}

	holdNext := func() int {
		s.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultDelay, Delay: hold})
		return s.Calls(concurtest.EndpointToken)
	}
	// inFlight waits until the engine's token call reached the simulator.
	inFlight := func(before int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); s.Calls(concurtest.EndpointToken) == before; {
			if time.Now().After(deadline) {
				t.Fatal("no token call reached the simulator within 30s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	rotateAsync := func(c *api.Client) <-chan error {
		done := make(chan error, 1)
		go func() { _, err := rotate(c, mountPath); done <- err }()
		return done
	}
	gaveUp := 0
	for round := range 3 {
		// An operator's rotate that gives up after one second.
		active = cl.Active()
		impatient := active.NewClient(active.RootToken)
		impatient.SetClientTimeout(time.Second)
		before := holdNext()
		if _, err := impatient.Logical().Write(mountPath+"/rotate", nil); err != nil {
			gaveUp++
		}
		inFlight(before)

		// A plugin reload while a rotate is in flight.
		before = holdNext()
		done := rotateAsync(active.Client)
		inFlight(before)
		if _, err := active.Client.Sys().ReloadPluginWithContext(ctxT(t, time.Minute),
			&api.ReloadPluginInput{Mounts: []string{mountPath + "/"}}); err != nil {
			t.Fatalf("round %d: plugin reload: %v", round, err)
		}
		<-done // it may fail (its instance went); its grant must still be stored

		// A leader step-down while a rotate is in flight.
		before = holdNext()
		done = rotateAsync(active.Client)
		inFlight(before)
		if err := active.Client.Sys().StepDownWithContext(ctxT(t, time.Minute)); err != nil {
			t.Fatalf("round %d: step-down: %v", round, err)
		}
		<-done
		t.Logf("round %d: the leader was %s; now %s", round, active.cfg.Name, cl.Active().cfg.Name)
	}

	// Afterwards: creds served, status ok (the next renewal clears any
	// degraded state), no dead token presented, no new bootstrap.
	active = cl.Active()
	var status any
	for deadline := time.Now().Add(2 * time.Minute); ; {
		readCreds(t, active.Client, mountPath, 0)
		cfg := readConfig(t, active.Client, mountPath)
		if status = cfg["status"]; status == "ok" || time.Now().After(deadline) {
			if status != "ok" {
				t.Errorf("config status %v (last_error %v), want ok", status, cfg["last_error"])
			}
			break
		}
		time.Sleep(time.Second)
	}
	rotateChecked(t, s, active.Client, mountPath)
	t.Logf("figures: 3 rounds; %d of 3 impatient rotates gave up; 3 plugin reloads and 3 step-downs with a grant in flight; "+
		"%d refresh grants; %d invalid_grant (108) answers; %d password grants",
		gaveUp, s.GrantCalls("refresh_token"), s.ErrorCount(108), s.GrantCalls("password"))
	if n := s.ErrorCount(108); n != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times: a dead refresh token was presented", n)
	}
	if n := s.GrantCalls("password"); n != 1 {
		t.Errorf("password grants = %d, want 1 (no re-bootstrap)", n)
	}
}
