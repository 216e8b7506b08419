package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Group 5: a three-node raft cluster on loopback. Creds work through every node (standbys
// forward to the active node); after the active node stops, the new active node keeps
// serving and refreshing; the simulator (rotation "rotate") never sees invalid_grant and
// every refresh uses the then-current refresh token.
func TestHA(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	cl := StartRaftCluster(t, 3)
	active := cl.Active()
	nodes := append([]*Node{active}, cl.Standbys(active)...)
	SetupPlugin(t, mountPath, nodes...) // binary in every node's plugin_directory, registered once
	s.bootstrap(t, active.Client, mountPath)

	tok := accessToken(readCreds(t, active.Client, mountPath, 0))
	for _, nd := range cl.Standbys(active) {
		if got := accessToken(readCreds(t, nd.Client, mountPath, 0)); got != tok {
			t.Errorf("creds via standby %s returned a different token than the active node", nd.cfg.Name)
		}
	}
	// Refreshes requested through a standby are forwarded and served once.
	rotateChecked(t, s, cl.Standbys(active)[0].Client, mountPath)
	tok = accessToken(readCreds(t, active.Client, mountPath, 0))
	for _, nd := range cl.Standbys(active) {
		if got := accessToken(readCreds(t, nd.Client, mountPath, 0)); got != tok {
			t.Errorf("after rotate, standby %s serves a different token", nd.cfg.Name)
		}
	}

	// Concurrent refreshes through all nodes are serialised on the active node: every one
	// succeeds and none presents a spent refresh token.
	concurrentRotates(t, s, 3, cl.Nodes...)
	tok = accessToken(readCreds(t, active.Client, mountPath, 0))

	// Fail over while clients keep reading creds through the standbys (errors are allowed
	// while there is no leader; a served token must always be a real one).
	refreshes := s.GrantCalls("refresh_token")
	old := active
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	for _, nd := range cl.Standbys(old) {
		wg.Add(1)
		go func(nd *Node) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				sec, err := nd.Client.Logical().ReadWithContext(ctx, mountPath+"/creds")
				cancel()
				if err == nil && sec != nil && accessToken(sec) != "" {
					served.Add(1)
				} else {
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(nd)
	}
	t.Logf("stopping active node %s", old.cfg.Name)
	stopped := time.Now()
	old.Stop()
	active = cl.Active()
	readCreds(t, active.Client, mountPath, 0)
	t.Logf("new active node %s serving %s after the stop", active.cfg.Name, time.Since(stopped).Round(time.Millisecond))
	// The readers on the remaining standby must get creds from the new leader too.
	after := served.Load()
	for deadline := time.Now().Add(30 * time.Second); served.Load() < after+5; {
		if time.Now().After(deadline) {
			t.Errorf("creds through the remaining standby did not recover within 30s of the fail-over")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("creds through standbys during fail-over: %d served, %d failed", served.Load(), failed.Load())
	if served.Load() == 0 {
		t.Error("no creds were served through the standbys during fail-over")
	}
	if active == old {
		t.Fatal("stopped node still active")
	}
	if got := accessToken(readCreds(t, active.Client, mountPath, 0)); got != tok {
		t.Error("new active node does not serve the stored access token")
	}
	rotateChecked(t, s, active.Client, mountPath)
	for _, nd := range cl.Standbys(active) {
		readCreds(t, nd.Client, mountPath, 0)
	}
	// Refreshes through every remaining node (standbys forward to the new leader), each one
	// served with the then-current refresh token; creds via every node see the new token.
	for _, via := range append([]*Node{active}, cl.Standbys(active)...) {
		rotateChecked(t, s, via.Client, mountPath)
		newTok := accessToken(readCreds(t, active.Client, mountPath, 0))
		if newTok == tok {
			t.Errorf("rotate via %s: creds still return the old access token", via.cfg.Name)
		}
		tok = newTok
		for _, nd := range cl.Standbys(active) {
			if got := accessToken(readCreds(t, nd.Client, mountPath, 0)); got != tok {
				t.Errorf("after rotate via %s, %s serves a different token", via.cfg.Name, nd.cfg.Name)
			}
		}
	}
	concurrentRotates(t, s, 3, append([]*Node{active}, cl.Standbys(active)...)...)
	tok = accessToken(readCreds(t, active.Client, mountPath, 0))
	if got := s.GrantCalls("refresh_token"); got <= refreshes+1 {
		t.Errorf("refresh grants after failover: %d -> %d, want them to move", refreshes, got)
	}

	// The old node comes back as a standby and serves the current token.
	old.Start()
	old.Unseal()
	cl.WaitVoters(3)
	if got := accessToken(readCreds(t, old.Client, mountPath, 0)); got != tok {
		t.Error("rejoined node serves a different token")
	}
	if st := readConfig(t, active.Client, mountPath)["status"]; st != "ok" {
		t.Errorf("config status = %v, want ok", st)
	}
	if n := s.ErrorCount(108); n != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times", n)
	}
	if n := s.GrantCalls("password"); n != 1 {
		t.Errorf("password grants = %d, want 1 (no re-bootstrap)", n)
	}
}

// concurrentRotates sends perNode `write -f concur/rotate` requests through each node at the
// same time and checks that all succeed, that each made exactly one refresh grant, and that
// the simulator never saw a spent refresh token (invalid_grant, code 108).
func concurrentRotates(t *testing.T, s *sim, perNode int, nodes ...*Node) {
	t.Helper()
	grants := s.GrantCalls("refresh_token")
	errs108 := s.ErrorCount(108)
	var wg sync.WaitGroup
	errs := make(chan error, perNode*len(nodes))
	for _, nd := range nodes {
		for range perNode {
			wg.Add(1)
			go func(nd *Node) {
				defer wg.Done()
				if _, err := rotate(nd.Client, mountPath); err != nil {
					errs <- fmt.Errorf("rotate via %s: %s", nd.cfg.Name, errText(err))
				}
			}(nd)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.ErrorCount(108) - errs108; got != 0 {
		t.Errorf("concurrent rotates: %d invalid_grant answers (a spent refresh token was used)", got)
	}
	want := perNode * len(nodes)
	if got := s.GrantCalls("refresh_token") - grants; got != want {
		t.Errorf("concurrent rotates: %d refresh grants for %d rotate requests", got, want)
	}
}
