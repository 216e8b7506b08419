package backend

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Partner-scale benchmarks (docs/performance.md): a mount with 10,000
// companies. Measured, never asserted.
const benchCompanies = 10_000

// newPartnerBench is a mount whose app is configured and whose storage
// holds n companies, each with a refresh token the simulator honours and,
// when withAccess, an access token valid for an hour. Entries are written
// straight to storage (as a mount that has run for a while holds them) and
// the backend is fresh, so nothing is loaded yet.
func newPartnerBench(b testing.TB, n int, withAccess bool) *testEnv {
	b.Helper()
	e := newTestEnv(b, concurtest.Options{Users: -1})
	e.b.Logger().SetLevel(hclog.Info)
	e.bootstrap()
	access := e.b.defaultEntry().Token.AccessToken // a real token's size
	now := e.clock.Now()
	ctx := context.Background()
	for i := range n {
		uuid := companyUUID(i + 1)
		e.sim.AddCompany(uuid, "")
		t := tokenEntry{RefreshToken: e.sim.NewRefreshToken(testClientID, uuid), RefreshExpiresAt: now.AddDate(0, 6, 0),
			Geolocation: e.sim.URL, Status: statusOK, LastRefreshAt: now, Scope: "openid user"}
		if withAccess {
			t.AccessToken, t.TokenType, t.ExpiresAt = access+fmt.Sprint(i), "Bearer", now.Add(time.Hour)
		}
		if err := putJSON(ctx, e.storage, companyStorageKey(fmt.Sprint("co-", i)), &companyEntry{CompanyUUID: uuid, Token: t}); err != nil {
			b.Fatal(err)
		}
	}
	fresh := newBackend(options{now: e.b.now, httpClient: e.b.httpClient, retry: e.b.retry})
	conf := &logical.BackendConfig{Logger: e.b.Logger(), System: e.sys, StorageView: e.storage}
	if err := fresh.Setup(ctx, conf); err != nil {
		b.Fatal(err)
	}
	e.b = fresh
	return e
}

// A periodic pass with nothing due, 10,000 companies loaded: what Vault's
// once-a-minute call costs a partner's mount.
func BenchmarkPeriodicPassNothingDue10k(b *testing.B) {
	e := newPartnerBench(b, benchCompanies, true)
	if err := e.periodic(); err != nil { // the first pass loads every company
		b.Fatal(err)
	}
	calls := e.sim.Calls(concurtest.EndpointToken)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.periodic(); err != nil {
			b.Fatal(err)
		}
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		b.Fatal("a pass with nothing due called Concur")
	}
}

// The heap a loaded company costs, tokens included (bytes/company). One
// operation writes 10,000 companies and loads them into a fresh backend
// (over a second: the benchmark runs it once).
func BenchmarkMemoryPerCompany10k(b *testing.B) {
	for b.Loop() {
		e := newPartnerBench(b, benchCompanies, true)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := e.periodic(); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchCompanies, "bytes/company")
		runtime.KeepAlive(e)
	}
}

// 10,000 companies read for the first time with no access token yet (as
// after an import or a long idle spell), 32 readers at a time: one grant
// per company, and the time it all takes.
func BenchmarkFirstReads10k(b *testing.B) {
	e := newPartnerBench(b, benchCompanies, false)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		e.clock.Advance(2 * time.Hour) // every access token (from the last round) expired
		grants := e.sim.GrantCalls("refresh_token")
		b.StartTimer()
		work := make(chan int)
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					req := &logical.Request{Operation: logical.ReadOperation, Path: fmt.Sprint("companies/co-", i, "/creds"), Storage: e.storage}
					if resp, err := e.b.HandleRequest(ctx, req); err != nil || resp.Data["access_token"] == "" {
						b.Errorf("co-%d: %v", i, err)
					}
				}
			}()
		}
		for i := range benchCompanies {
			work <- i
		}
		close(work)
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(e.sim.GrantCalls("refresh_token")-grants)/benchCompanies, "grants/company")
		b.StartTimer()
	}
}
