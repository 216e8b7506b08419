package backend

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Partner scale: 1,000 companies over seven simulated months under strict
// rotation, with Concur and storage faults and a few busy companies read
// all along. No refresh token is lost, a quiet company gets no more grants
// than its keep-alives (and the retries faults cost), and the mount never
// has more token calls in flight than its bound.
func TestPartnerScaleSevenMonths(t *testing.T) {
	const (
		companies  = 1000
		busy       = 5 // read every readEvery; the rest are never read
		readEvery  = 12
		countEvery = 4
		tick       = 30 * time.Minute
		months     = 7
	)
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate, Users: -1, DataCenters: partnerDataCenters})
	flight := &inFlight{base: e.sim.Client().Transport}
	e.b.httpClient = &http.Client{Transport: flight}
	data := e.baseConfig()
	delete(data, "company_uuid")
	e.mustOK(logical.CreateOperation, "config", data)
	name := func(i int) string { return fmt.Sprint("co-", i) }
	for i := range companies {
		e.connect(name(i), i+1, partnerDataCenters[1+i%2])
	}
	rng := rand.New(rand.NewPCG(12, 1)) //nolint:gosec // seeded, so a failing run can be replayed
	faults := []concurtest.Fault{
		{Kind: concurtest.FaultStatus, Status: 503},
		{Kind: concurtest.FaultStatus, Status: 429, RetryAfter: "120"},
		{Kind: concurtest.FaultMalformedJSON},
		{Kind: concurtest.FaultHold, Delay: time.Millisecond},
		{Kind: concurtest.FaultWrongTypes},
		{Kind: concurtest.FaultDrop},
	}
	// Successful grants of the quiet companies, seen as a new last_refresh_at
	// every countEvery ticks (two hours: keep-alives are weeks apart; renewing
	// more often than every two hours would still show as one a sample, far
	// over the bound below).
	quiet := make([]string, 0, companies-busy)
	for i := busy; i < companies; i++ {
		quiet = append(quiet, name(i))
	}
	renewals := make([]int, len(quiet))
	lastRefresh := make([]time.Time, len(quiet))
	countRenewals := func() {
		views := e.b.companies.views()
		for j, q := range quiet {
			if v := views[q]; v.entry != nil && !v.entry.Token.LastRefreshAt.Equal(lastRefresh[j]) {
				lastRefresh[j] = v.entry.Token.LastRefreshAt
				renewals[j]++
			}
		}
	}
	countRenewals()
	clear(renewals) // the connecting grants
	end := e.clock.Now().AddDate(0, months, 0)
	faulted := 0
	for n := 0; e.clock.Now().Before(end); n++ {
		e.clock.Advance(tick)
		switch r := rng.IntN(100); {
		case r < 4:
			e.sim.InjectFault(concurtest.EndpointToken, 1+rng.IntN(3), faults[rng.IntN(len(faults))])
			faulted++
		case r < 6:
			e.storage.set(1, false) // the next storage write fails
		}
		_ = e.periodic()
		if n%countEvery == 0 {
			countRenewals()
		}
		for i := range busy {
			if n%readEvery == i%readEvery {
				_, _ = e.request(logical.ReadOperation, "companies/"+name(i)+"/creds", nil)
			}
		}
	}
	e.sim.ClearFaults()
	e.storage.set(0, false)
	// Let backoffs end and unsaved writes land.
	for range 12 {
		e.clock.Advance(5 * time.Minute)
		_ = e.periodic()
	}
	countRenewals()

	if n := e.sim.DeadRefreshTokenUses(); n != 0 {
		t.Errorf("dead refresh tokens presented %d times", n)
	}
	keepAlives := int(months*31*24*time.Hour/(keepAliveEvery-keepAliveJitter)) + 1
	for i := range companies {
		co := e.companyEntry(name(i))
		if co == nil || co.Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, companyUUID(i+1)) {
			t.Fatalf("%s lost its refresh token", name(i))
		}
		if co.Token.Status == statusNeedsBootstrap {
			t.Errorf("%s needs_bootstrap: %s", name(i), co.Token.LastError)
		}
		if i < busy {
			continue
		}
		ok := renewals[i-busy]
		if ok > keepAlives {
			t.Errorf("%s: %v successful refresh grants in %d months, want at most %d keep-alives", name(i), ok, months, keepAlives)
		}
		if ok < months {
			t.Errorf("%s: %v refresh grants in %d months, want about one a month", name(i), ok, months)
		}
	}
	if p := flight.peak.Load(); p > maxConcurrentGrants {
		t.Errorf("peak token calls in flight %d, bound %d", p, maxConcurrentGrants)
	}
	t.Logf("%d companies, %d months: %d refresh grants, %d fault bursts, peak %d token calls in flight",
		companies, months, e.sim.GrantCalls("refresh_token"), faulted, flight.peak.Load())
}
