package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// holdingDoor stands in front of the simulator: it passes every request on
// and, for the next `held` token requests, holds Concur's answer (already
// processed: under strict rotation the presented token is dead by then)
// before sending it, or drops it if the client gave up meanwhile.
type holdingDoor struct {
	URL    string
	held   atomic.Int32
	hold   time.Duration
	target atomic.Pointer[httputil.ReverseProxy]
}

func newHoldingDoor(t *testing.T, hold time.Duration) *holdingDoor {
	d := &holdingDoor{hold: hold}
	srv := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(srv.Close)
	d.URL = srv.URL
	return d
}

func (d *holdingDoor) setTarget(t *testing.T, target string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	d.target.Store(httputil.NewSingleHostReverseProxy(u))
}

func (d *holdingDoor) serve(w http.ResponseWriter, r *http.Request) {
	proxy := d.target.Load()
	if r.URL.Path != "/oauth2/v0/token" || d.held.Add(-1) < 0 {
		proxy.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	proxy.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
	select {
	case <-time.After(d.hold):
	case <-r.Context().Done():
		return // the answer is lost; Concur did the grant
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Issue 10, point 9: refresh-token custody on real Vault. Strict rotation (a
// token presented twice is dead), 75-second access tokens, and Concur's
// token answers held 3 s after Concur processed them: operators' rotate calls that give up after 1 s,
// `vault plugin reload` and a raft leader step-down while a grant is in
// flight, three rounds. Afterwards creds are served, status is ok, and the
// simulator never saw a dead refresh token (code 108) nor a new bootstrap.
func TestCustodyUnderInterruptions(t *testing.T) {
	t.Parallel()
	const hold = 3 * time.Second
	// Concur names the door as the company's geolocation: every token call goes through it.
	door := newHoldingDoor(t, hold)
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate, AccessTokenTTL: 75 * time.Second, Geolocation: door.URL})
	door.setTarget(t, s.URL)
	cl := StartRaftCluster(t, 3)
	active := cl.Active()
	SetupPlugin(t, mountPath, append([]*Node{active}, cl.Standbys(active)...)...)
	rt := s.NewRequestToken(s.ClientID, s.Company)
	if _, err := active.Client.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/config",
		s.configData(map[string]any{"request_token": rt, "refresh_margin": "1m", "base_url": door.URL})); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}

	holdNext := func() int {
		door.held.Store(1)
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
		// It may fail (its instance went); its grant must still be stored.
		if err := <-done; err != nil {
			t.Logf("round %d: the rotate across the reload: %v", round, err)
		}

		// A leader step-down while a rotate is in flight.
		before = holdNext()
		done = rotateAsync(active.Client)
		inFlight(before)
		if err := active.Client.Sys().StepDownWithContext(ctxT(t, time.Minute)); err != nil {
			t.Fatalf("round %d: step-down: %v", round, err)
		}
		if err := <-done; err != nil {
			t.Logf("round %d: the rotate across the step-down: %v", round, err)
		}
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
