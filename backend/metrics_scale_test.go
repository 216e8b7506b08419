package backend

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// mountOf is a mount whose storage holds healthy companies co-0 ... co-(n-1)
// besides the default one, with shape applied to co-i's entry first (see
// newPartnerBench; nothing is loaded yet).
func mountOf(t testing.TB, n int, shape func(i int, e *companyEntry)) *testEnv {
	t.Helper()
	e := newPartnerBench(t, n, true)
	ctx := context.Background()
	for i := range n {
		name := fmt.Sprint("co-", i)
		var entry companyEntry
		if _, err := getJSON(ctx, e.storage, companyStorageKey(name), &entry); err != nil {
			t.Fatal(err)
		}
		before := entry
		if shape(i, &entry); entry == before {
			continue
		}
		if err := putJSON(ctx, e.storage, companyStorageKey(name), &entry); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// refusedEvery makes every k-th company (co-0, co-k, ...) one Concur
// refused, count of them.
func refusedEvery(k, count int) func(int, *companyEntry) {
	return func(i int, e *companyEntry) {
		if i%k == 0 && i/k < count {
			e.Token.Status, e.Token.LastError = statusNeedsBootstrap, "Concur refused the refresh token (108)"
		}
	}
}

// scrapeBody is one scrape's text.
func scrapeBody(t testing.TB, e *testEnv) []byte {
	t.Helper()
	resp := e.mustOK(logical.ReadOperation, "metrics", nil)
	return resp.Data[logical.HTTPRawBody].([]byte)
}

// samples counts a scrape's samples (what a scraper's sample_limit counts),
// all of them and those of the engine's own series.
func samples(body []byte) (all, engine int) {
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		all++
		if strings.HasPrefix(line, metricsNamespace+"_") {
			engine++
		}
	}
	return all, engine
}

// named is the companies a scrape names, by their company_status series.
func named(families map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for _, m := range families["vault_concur_company_status"].GetMetric() {
		var name, status string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "company":
				name = lp.GetValue()
			case "status":
				status = lp.GetValue()
			}
		}
		out[name] = status
	}
	return out
}

func parse(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// A scrape costs the same whatever the company count: with 20 companies
// refused, the engine's samples at 10,000 companies equal those at 100,
// and the whole scrape stays under 1,500 samples. The logged table is
// docs/metrics.md's. (Fails with a company label on every state series.)
func TestMetricsSamplesStayBounded(t *testing.T) {
	engineAt := map[int]int{}
	t.Logf("| companies | refused | default: all samples | default: engine samples | full: engine samples |")
	for _, n := range []int{1, 100, 10_000} {
		refused := 20
		e := mountOf(t, n-1, refusedEvery(max(1, (n-1)/refused), refused))
		if n == 1 { // the default company alone, refused
			refused = 1
			e.sim.RevokeConnection(testClientID, testCompany)
			_, _ = e.request(logical.UpdateOperation, "rotate", nil)
		}
		m := parse(t, scrapeBody(t, e))
		if got := len(named(m)); got != refused {
			t.Errorf("%d companies, %d refused: %d named", n, refused, got)
		}
		all, engine := samples(scrapeBody(t, e))
		e.mustOK(logical.UpdateOperation, "config", map[string]any{"metrics_detail": metricsDetailFull})
		_, full := samples(scrapeBody(t, e))
		t.Logf("| %d | %d | %d | %d | %d |", n, refused, all, engine, full)
		engineAt[n] = engine
		if all > 1500 {
			t.Errorf("%d companies: %d samples in the default mode, want at most 1,500", n, all)
		}
		if got := len(named(parse(t, scrapeBody(t, e)))); got != n {
			t.Errorf("full mode names %d of %d companies", got, n)
		}
	}
	if engineAt[10_000] != engineAt[100] {
		t.Errorf("engine samples grow with the company count: %d at 100, %d at 10,000", engineAt[100], engineAt[10_000])
	}
}

// Only companies that need an operator are named, those that lapse
// soonest first and at most 100; the mount-wide series count them all.
func TestMetricsNameOnlyCompaniesThatNeedAnOperator(t *testing.T) {
	const n = 300
	e := mountOf(t, n, func(i int, c *companyEntry) {
		now := testEpoch
		switch {
		case i < 50: // refused: lapsed already
			c.Token.Status = statusNeedsBootstrap
		case i < 120: // failing transiently, no access token; the refresh token lapses in i-50 days and an hour
			c.Token.Status, c.Token.Failures, c.Token.AccessToken = statusDegraded, 3, ""
			c.Token.RefreshExpiresAt = now.Add(time.Duration(i-50)*24*time.Hour + time.Hour)
		case i < 130: // ok, but the refresh token lapses within 14 days (after co-63's, before co-64's)
			c.Token.RefreshExpiresAt = now.Add(13*24*time.Hour + 12*time.Hour)
		}
	})
	m := parse(t, scrapeBody(t, e))
	got := named(m)
	if len(got) != maxNamedCompanies {
		t.Fatalf("%d companies named, want the cap %d", len(got), maxNamedCompanies)
	}
	for i := range n {
		name := fmt.Sprint("co-", i)
		_, isNamed := got[name]
		// The 50 refused, then by refresh expiry: co-50 ... co-63, the ten ok ones, co-64 ... co-89.
		if want := i < 90 || (i >= 120 && i < 130); isNamed != want {
			t.Errorf("%s named: %v, want %v", name, isNamed, want)
		}
	}
	if got["co-0"] != statusNeedsBootstrap || got["co-60"] != statusDegraded {
		t.Errorf("statuses: co-0 %q, co-60 %q", got["co-0"], got["co-60"])
	}
	wantValue(t, m, 130, "vault_concur_companies_needing_attention")
	wantValue(t, m, 50, "vault_concur_companies", "status", statusNeedsBootstrap)
	wantValue(t, m, 70, "vault_concur_companies", "status", statusDegraded)
	wantValue(t, m, n+1-120, "vault_concur_companies", "status", statusOK)
	// Live refresh tokens expiring within 14 days: co-50 ... co-63 and the ten ok ones.
	wantBucket(t, m, "vault_concur_refresh_token_remaining_seconds", 14*86400, 14+10)
	wantValue(t, m, float64(testEpoch.Add(time.Hour).Unix()), "vault_concur_refresh_token_expiry_timestamp_seconds")
	wantValue(t, m, float64(testEpoch.Add(time.Hour).Unix()),
		"vault_concur_company_refresh_token_expiry_timestamp_seconds", "company", "co-50")
	wantValue(t, m, 3, "vault_concur_company_renewal_consecutive_failures", "company", "co-50")

	// A deleted company's series go; the next one in line is named.
	e.mustOK(logical.DeleteOperation, "companies/co-0", nil)
	got = named(parse(t, scrapeBody(t, e)))
	if _, ok := got["co-0"]; ok || len(got) != maxNamedCompanies || got["co-90"] != statusDegraded {
		t.Errorf("after deleting co-0: co-0 named %v, %d named, co-90 %q", ok, len(got), got["co-90"])
	}
}

// The renewal backlog counts companies past their periodic renewal's due
// time; the pass that renews them empties it.
func TestMetricsRenewalBacklog(t *testing.T) {
	e := mountOf(t, 5, func(i int, c *companyEntry) {
		if i < 2 { // no grant for 40 days: the keep-alive is past due
			c.Token.LastRefreshAt = testEpoch.Add(-40 * 24 * time.Hour)
		}
	})
	wantValue(t, parse(t, scrapeBody(t, e)), 2, "vault_concur_renewal_backlog")
	if err := e.periodic(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, parse(t, scrapeBody(t, e)), 0, "vault_concur_renewal_backlog")
}

// The exposition passes the linter behind promtool check metrics, in both
// modes and with every kind of series present.
func TestMetricsPassPromlint(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 2})
	e.bootstrap()
	e.creds()
	e.mustOK(logical.ReadOperation, "profile/"+e.sim.Users(testCompany)[0].ID, nil)
	e.clock.Advance(55 * time.Minute)
	e.sim.InjectFault(concurtest.EndpointToken, 100, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	_ = e.periodic() // degraded: the company is named
	for _, detail := range []string{metricsDetailAttention, metricsDetailFull} {
		e.mustOK(logical.UpdateOperation, "config", map[string]any{"metrics_detail": detail})
		body := scrapeBody(t, e)
		if !bytes.Contains(body, []byte("vault_concur_company_status{")) {
			t.Fatalf("%s: no company series to lint", detail)
		}
		// docs/metrics.md's query for "expiring within 14 days" names this bucket.
		if !bytes.Contains(body, []byte(`vault_concur_refresh_token_remaining_seconds_bucket{le="1.2096e+06"}`)) {
			t.Errorf("no 14-day bucket written as docs/metrics.md queries it")
		}
		problems, err := promlint.New(bytes.NewReader(body)).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", detail, p.Metric, p.Text)
		}
	}
}

// metrics_detail is a config setting: shown on read, checked on write; full
// names a healthy company, the default does not.
func TestMetricsDetailSetting(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["metrics_detail"]; got != metricsDetailAttention {
		t.Errorf("metrics_detail %v by default", got)
	}
	resp, err := e.request(logical.UpdateOperation, "config", map[string]any{"metrics_detail": "everything"})
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "metrics_detail") {
		t.Errorf("metrics_detail=everything: %v / %v, want a 400 naming the field", resp, err)
	}
	if len(named(scrape(t, e))) != 0 {
		t.Errorf("a healthy company is named in the default mode")
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"metrics_detail": metricsDetailFull})
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["metrics_detail"]; got != metricsDetailFull {
		t.Errorf("metrics_detail %v after writing full", got)
	}
	m := scrape(t, e)
	wantValue(t, m, 1, "vault_concur_company_status", "company", defaultCompanyName, "status", statusOK)
	wantValue(t, m, float64(testEpoch.Add(time.Hour).Unix()),
		"vault_concur_company_access_token_expiry_timestamp_seconds", "company", defaultCompanyName)
}

// The metrics' status of a company is the one its read shows.
func TestViewStatusIsTheReadStatus(t *testing.T) {
	for _, v := range []companyView{
		{},
		{entry: &companyEntry{}},
		{entry: &companyEntry{Token: tokenEntry{Status: statusOK}}},
		{entry: &companyEntry{Token: tokenEntry{Status: statusOK}}, unsaved: true},
		{entry: &companyEntry{Token: tokenEntry{Status: statusDegraded}}},
		{entry: &companyEntry{Token: tokenEntry{Status: statusNeedsBootstrap}}},
		{unreadable: "invalid character"},
	} {
		if got, want := viewStatus(v), companyResponseData(v)["status"]; got != want {
			t.Errorf("%+v: %q, read shows %q", v, got, want)
		}
	}
}

// One default-mode scrape of a mount with 10,000 companies (20 refused),
// all loaded (docs/performance.md's goal: under 50 ms through Vault).
func BenchmarkMetricsScrape10k(b *testing.B) {
	e := mountOf(b, benchCompanies, refusedEvery(benchCompanies/20, 20))
	scrapeBody(b, e) // loads every company
	b.ReportAllocs()
	for b.Loop() {
		scrapeBody(b, e)
	}
}
