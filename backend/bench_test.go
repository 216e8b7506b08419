package backend

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Benchmarks of the engine's own cost (docs/performance.md). Run them with
//
//	go test -run '^$' -bench . -benchmem ./backend ./concur
//
// The targets are judged from these numbers, never from timed tests.

// newBenchEnv is newTestEnv logging at info, Vault's default level: the test
// environment logs at trace, and the Debug line each Concur call writes
// would otherwise be part of what profile reads measure.
func newBenchEnv(b *testing.B) *testEnv {
	e := newTestEnv(b, concurtest.Options{})
	e.b.Logger().SetLevel(hclog.Info)
	e.bootstrap()
	return e
}

// A warm creds read through the backend's own request handling: the path
// every app's `vault read concur/creds` takes once Vault has routed it.
func BenchmarkCredsReadWarm(b *testing.B) {
	e := newBenchEnv(b)
	req := &logical.Request{Operation: logical.ReadOperation, Path: "creds", Storage: e.storage}
	ctx := context.Background()
	before := e.sim.GrantCalls("refresh_token") + e.sim.GrantCalls("password")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.b.HandleRequest(ctx, req)
		if err != nil || resp.Data["access_token"] == "" {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.sim.GrantCalls("refresh_token") + e.sim.GrantCalls("password") - before; n != 0 {
		b.Fatalf("%d Concur token calls during warm reads, want 0", n)
	}
}

// The same with 1,000 concurrent readers.
func BenchmarkCredsReadWarmParallel(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	before := e.sim.GrantCalls("refresh_token") + e.sim.GrantCalls("password")
	b.ReportAllocs()
	b.SetParallelism(1000 / runtime.GOMAXPROCS(0)) // GOMAXPROCS x this = 1,000 concurrent readers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := &logical.Request{Operation: logical.ReadOperation, Path: "creds", Storage: e.storage}
		for pb.Next() {
			if _, err := e.b.HandleRequest(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if n := e.sim.GrantCalls("refresh_token") + e.sim.GrantCalls("password") - before; n != 0 {
		b.Fatalf("%d Concur token calls during warm reads, want 0", n)
	}
}

// 1,000 concurrent readers while the access token keeps running out: the
// clock jumps ahead to 30 s before the token's expiry, readers find it too
// short-lived to serve and renew together. Reports Concur token calls per
// token lifetime, which must be exactly 1 (one mount, any read load).
//
// Jumping an hour in an instant is only fair when no request straddles the
// jump (a real reader is never descheduled for an hour between loading the
// state and looking at the clock), so readers hold gate for reading during
// each request and the jump takes it for writing.
func BenchmarkCredsReadParallelAcrossExpiry(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	calls := func() int { return e.sim.GrantCalls("refresh_token") + e.sim.GrantCalls("password") }
	before := calls()
	var (
		gate      sync.RWMutex
		lifetimes atomic.Int64
	)
	fresh := func() bool {
		st := e.b.defaultEntry()
		return st != nil && st.Token.ExpiresAt.Sub(e.clock.Now()) > minServeTTL
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			gate.Lock()
			// Jump only once the last jump's renewal has been stored.
			if calls()-before >= int(lifetimes.Load()) && fresh() {
				e.clock.Advance(concurtest.AccessTokenLifetime - 30*time.Second)
				lifetimes.Add(1)
			}
			gate.Unlock()
		}
	}()
	b.ReportAllocs()
	b.SetParallelism(1000 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := &logical.Request{Operation: logical.ReadOperation, Path: "creds", Storage: e.storage}
		for pb.Next() {
			gate.RLock()
			_, err := e.b.HandleRequest(ctx, req)
			gate.RUnlock()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	close(stop)
	<-done
	// The last jump may have had no reader after it: read once more, as the
	// next reader would.
	if _, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds", Storage: e.storage}); err != nil {
		b.Fatal(err)
	}
	n, l := calls()-before, int(lifetimes.Load())
	if l > 0 {
		b.ReportMetric(float64(n)/float64(l), "token-calls/lifetime")
		b.ReportMetric(float64(l), "lifetimes")
	}
	if n != l {
		b.Fatalf("%d Concur token calls over %d token lifetimes, want exactly one each", n, l)
	}
}

// A profile read through the backend: withBearer + Identity v4 call to the
// in-process simulator. Compare with BenchmarkProfileReadDirect: the
// difference is the engine's overhead over calling Concur yourself.
func BenchmarkProfileRead(b *testing.B) {
	e := newBenchEnv(b)
	id := e.sim.Users(testCompany)[0].ID
	req := &logical.Request{Operation: logical.ReadOperation, Path: "profile/" + id, Storage: e.storage}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.b.HandleRequest(ctx, req)
		if err != nil || resp == nil || resp.Data["user"].(map[string]any)["id"] != id {
			b.Fatal(err, resp)
		}
	}
}

// The same Identity v4 read with the concur client straight at the
// simulator, with the engine's current token: the baseline.
func BenchmarkProfileReadDirect(b *testing.B) {
	e := newBenchEnv(b)
	id := e.sim.Users(testCompany)[0].ID
	c, err := concur.New(concur.Options{HTTPClient: e.sim.Client(), AllowedHosts: []string{"http://127.0.0.1:*"}, Now: e.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	host, token := e.b.defaultEntry().Token.Geolocation, concur.NewSecret(e.b.defaultEntry().Token.AccessToken)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		user, err := c.GetUser(ctx, host, token, id, concur.UserQuery{})
		if err != nil || user["id"] != id {
			b.Fatal(err)
		}
	}
}

// BenchmarkProfileRead and BenchmarkProfileReadDirect interleaved in one
// loop, so both see the same machine state: reports each one's time per read
// and the engine's overhead (engine - direct). ns/op covers both reads.
func BenchmarkProfileReadOverhead(b *testing.B) {
	e := newBenchEnv(b)
	id := e.sim.Users(testCompany)[0].ID
	c, err := concur.New(concur.Options{HTTPClient: e.sim.Client(), AllowedHosts: []string{"http://127.0.0.1:*"}, Now: e.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	host, token := e.b.defaultEntry().Token.Geolocation, concur.NewSecret(e.b.defaultEntry().Token.AccessToken)
	req := &logical.Request{Operation: logical.ReadOperation, Path: "profile/" + id, Storage: e.storage}
	ctx := context.Background()
	var viaEngine, direct time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Alternate which goes first, so neither always finds warm caches.
		for j := range 2 {
			t0 := time.Now()
			if (i+j)%2 == 0 {
				resp, err := e.b.HandleRequest(ctx, req)
				if err != nil || resp == nil || resp.Data["user"].(map[string]any)["id"] != id {
					b.Fatal(err, resp)
				}
				viaEngine += time.Since(t0)
			} else {
				user, err := c.GetUser(ctx, host, token, id, concur.UserQuery{})
				if err != nil || user["id"] != id {
					b.Fatal(err)
				}
				direct += time.Since(t0)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(viaEngine.Nanoseconds())/n, "engine-ns/read")
	b.ReportMetric(float64(direct.Nanoseconds())/n, "direct-ns/read")
	b.ReportMetric(float64((viaEngine-direct).Nanoseconds())/n, "overhead-ns/read")
}
