package backend

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// scrape reads the metrics path and parses it as Prometheus would.
func scrape(t *testing.T, e *testEnv) map[string]*dto.MetricFamily {
	t.Helper()
	resp := e.mustOK(logical.ReadOperation, "metrics", map[string]any{"format": "prometheus"})
	if resp.Data[logical.HTTPStatusCode] != 200 {
		t.Errorf("status %v", resp.Data[logical.HTTPStatusCode])
	}
	if ct, _ := resp.Data[logical.HTTPContentType].(string); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q, want Prometheus text", ct)
	}
	body, _ := resp.Data[logical.HTTPRawBody].([]byte)
	for _, s := range e.secrets() {
		if s != "" && bytes.Contains(body, []byte(s)) {
			t.Errorf("a secret appears in the metrics")
		}
	}
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the metrics: %v\n%s", err, body)
	}
	return families
}

// value returns the value of the series of name whose labels include
// labels (name=value pairs), and whether there is one.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := families[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func wantValue(t *testing.T, families map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(families, name, labels...)
	if !ok {
		t.Errorf("no series %s%v", name, labels)
	} else if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestMetricsGrantsStatusAndExpiry(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	m := scrape(t, e)
	wantValue(t, m, 1, "vault_concur_companies", "status", statusNotConfigured)
	wantValue(t, m, 0, "vault_concur_companies", "status", statusOK)
	if _, ok := value(m, "vault_concur_access_token_expiry_timestamp_seconds"); ok {
		t.Errorf("access token expiry reported before config")
	}

	e.bootstrap()
	e.clock.Advance(10 * time.Minute)
	m = scrape(t, e)
	wantValue(t, m, 1, "vault_concur_grants_total", "grant_type", grantExchange, "outcome", outcomeOK, "code", "none")
	wantValue(t, m, 1, "vault_concur_companies", "status", statusOK)
	wantValue(t, m, 0, "vault_concur_companies", "status", statusNotConfigured)
	wantValue(t, m, 0, "vault_concur_companies_needing_attention")
	wantValue(t, m, float64(testEpoch.Add(time.Hour).Unix()), "vault_concur_access_token_expiry_timestamp_seconds")
	refresh, _ := value(m, "vault_concur_refresh_token_expiry_timestamp_seconds")
	if days := (refresh - float64(e.clock.Now().Unix())) / 86400; days < 170 || days > 190 {
		t.Errorf("refresh token expires in %.1f days, want about six months", days)
	}
	wantValue(t, m, 1, "vault_concur_refresh_token_remaining_seconds")
	wantBucket(t, m, "vault_concur_refresh_token_remaining_seconds", 14*86400, 0)
	wantValue(t, m, 1, "vault_concur_concur_requests_total", "endpoint", "token", "code", "2xx")
	wantValue(t, m, 1, "vault_concur_build_info", "version", Version)
	for name := range m {
		if strings.HasPrefix(name, "vault_concur_company_") {
			t.Errorf("a healthy company costs series: %s", name)
		}
	}

	// A periodic renewal, then one failing transiently, then one refused.
	e.clock.Advance(45 * time.Minute)
	if err := e.periodic(); err != nil {
		t.Fatal(err)
	}
	renewedAt := e.clock.Now()
	e.clock.Advance(52 * time.Minute)
	e.sim.InjectFault(concurtest.EndpointToken, 100, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	_ = e.periodic()
	m = scrape(t, e)
	wantValue(t, m, 1, "vault_concur_grants_total", "grant_type", grantRefresh, "outcome", outcomeOK)
	wantValue(t, m, 1, "vault_concur_grants_total", "grant_type", grantRefresh, "outcome", outcomeFailed, "code", "none")
	wantValue(t, m, 1, "vault_concur_renewal_duration_seconds", "outcome", outcomeOK)
	wantValue(t, m, 1, "vault_concur_renewal_duration_seconds", "outcome", outcomeFailed)
	wantValue(t, m, 1, "vault_concur_companies", "status", statusDegraded)
	wantValue(t, m, 1, "vault_concur_companies_needing_attention")
	wantValue(t, m, 1, "vault_concur_company_status", "company", defaultCompanyName, "status", statusDegraded)
	wantValue(t, m, 1, "vault_concur_company_renewal_consecutive_failures", "company", defaultCompanyName)
	wantValue(t, m, float64(renewedAt.Unix()), "vault_concur_company_last_renewal_timestamp_seconds", "company", defaultCompanyName)
	wantValue(t, m, float64(renewedAt.Add(time.Hour).Unix()),
		"vault_concur_company_access_token_expiry_timestamp_seconds", "company", defaultCompanyName)
	if n, _ := value(m, "vault_concur_concur_requests_total", "endpoint", "token", "code", "5xx"); n < 1 {
		t.Errorf("Concur's 503 answers not counted")
	}

	e.sim.ClearFaults()
	e.sim.RevokeConnection(testClientID, testCompany)
	e.clock.Advance(backoffMax)
	_ = e.periodic()
	m = scrape(t, e)
	wantValue(t, m, 1, "vault_concur_grants_total", "grant_type", grantRefresh, "outcome", outcomeRefused, "code", "108")
	wantValue(t, m, 1, "vault_concur_companies", "status", statusNeedsBootstrap)
	wantValue(t, m, 0, "vault_concur_companies", "status", statusDegraded)
	wantValue(t, m, 1, "vault_concur_company_status", "company", defaultCompanyName, "status", statusNeedsBootstrap)
	if _, ok := value(m, "vault_concur_refresh_token_expiry_timestamp_seconds"); ok {
		t.Errorf("a refused refresh token still counts as the soonest live one")
	}
}

// wantBucket checks the cumulative count of histogram name's bucket le.
func wantBucket(t *testing.T, families map[string]*dto.MetricFamily, name string, le float64, want uint64) {
	t.Helper()
	mf := families[name]
	if mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("no single histogram %s", name)
	}
	for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
		if b.GetUpperBound() == le {
			if b.GetCumulativeCount() != want {
				t.Errorf("%s{le=%g} = %d, want %d", name, le, b.GetCumulativeCount(), want)
			}
			return
		}
	}
	t.Errorf("%s has no bucket le=%g", name, le)
}

func TestMetricsCredsAndProfileRequests(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: 3})
	if _, err := e.request(logical.ReadOperation, "creds", nil); err == nil {
		t.Fatal("creds before config succeeded")
	}
	e.bootstrap()
	for range 3 {
		e.creds()
	}
	user := e.sim.Users(testCompany)[1]
	e.mustOK(logical.ReadOperation, "profile/"+user.ID, nil)
	resp, _ := e.request(logical.ReadOperation, "profile/not-a-uuid", nil)
	if resp == nil || !resp.IsError() {
		t.Fatalf("a bad profile id was not refused: %v", resp)
	}

	m := scrape(t, e)
	wantValue(t, m, 3, "vault_concur_requests_total", "path", "creds", "outcome", outcomeOK)
	wantValue(t, m, 3, "vault_concur_request_duration_seconds", "path", "creds", "outcome", outcomeOK)
	wantValue(t, m, 1, "vault_concur_requests_total", "path", "creds", "outcome", "client_error")
	wantValue(t, m, 1, "vault_concur_requests_total", "path", "profile", "outcome", outcomeOK)
	wantValue(t, m, 1, "vault_concur_requests_total", "path", "profile", "outcome", "client_error")
	wantValue(t, m, 1, "vault_concur_concur_requests_total", "endpoint", "identity", "code", "2xx")
	// User ids are not labels.
	for _, mf := range m {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if strings.Contains(lp.GetValue(), user.ID) {
					t.Errorf("%s carries a user id in label %s", mf.GetName(), lp.GetName())
				}
			}
		}
	}
}

func TestMetricsArePerMount(t *testing.T) {
	a := newTestEnv(t, concurtest.Options{})
	b := newTestEnv(t, concurtest.Options{})
	a.bootstrap()
	a.creds()
	m := scrape(t, b)
	if n, ok := value(m, "vault_concur_grants_total"); ok {
		t.Errorf("another mount's grants (%v) show in this mount's metrics", n)
	}
	if _, ok := value(m, "vault_concur_requests_total", "path", "creds"); ok {
		t.Errorf("another mount's reads show in this mount's metrics")
	}
	// Nothing goes to the process-wide default registry.
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if strings.HasPrefix(mf.GetName(), metricsNamespace) {
			t.Errorf("%s is in the default registry", mf.GetName())
		}
	}
}

func TestMetricsFormat(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.mustOK(logical.ReadOperation, "metrics", nil)
	resp, err := e.request(logical.ReadOperation, "metrics", map[string]any{"format": "json"})
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "format") {
		t.Errorf("format=json: %v / %v, want a 400 naming format", resp, err)
	}
}

func TestMetricsCountGrantsWaitingForTheRenewalLock(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	waiting := func() float64 {
		v, _ := value(scrape(t, e), "vault_concur_grants_waiting")
		return v
	}
	if w := waiting(); w != 0 {
		t.Fatalf("grants waiting %v at rest", w)
	}
	// The first rotate holds the lock while Concur is slow; the second waits for it.
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultDelay, Delay: 2 * time.Second})
	calls := e.sim.Calls(concurtest.EndpointToken)
	var wg sync.WaitGroup
	rotate := func() { defer wg.Done(); _, _ = e.request(logical.UpdateOperation, "rotate", nil) }
	wg.Add(2)
	go rotate()
	for e.sim.Calls(concurtest.EndpointToken) == calls {
		time.Sleep(time.Millisecond) // until the first grant is at Concur
	}
	go rotate()
	deadline := time.Now().Add(5 * time.Second)
	for waiting() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second rotate was never counted as waiting")
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if w := waiting(); w != 0 {
		t.Errorf("grants waiting %v after both finished", w)
	}
}
