package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// scrapeMetrics GETs /v1/<mount>/metrics?format=prometheus as a Prometheus
// scrape job would (bearer token) and returns the HTTP status, content type
// and body.
func scrapeMetrics(t testing.TB, n *Node, token, mount string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t, time.Minute), http.MethodGet, n.Addr+"/v1/"+mount+"/metrics?format=prometheus", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape body: %v", err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func parseMetrics(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return families
}

// metricValue is the value (sample count for histograms) of the first
// series of name whose labels include the name=value pairs.
func metricValue(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
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

// Metrics scraped through real Vault by a token that may read only the
// metrics path: they count what happened (a bootstrap, a rotation, creds
// reads) and carry no secret.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	root := n.Client
	s.bootstrap(t, root, mountPath)

	if err := root.Sys().PutPolicy("concur-metrics", `path "concur/metrics" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	scraper := newToken(t, root, "concur-metrics")
	reader := newToken(t, root, "default")

	if code, _, _ := scrapeMetrics(t, n, "", mountPath); code != http.StatusForbidden {
		t.Errorf("scrape without a token: HTTP %d, want 403", code)
	}
	if code, _, _ := scrapeMetrics(t, n, reader, mountPath); code != http.StatusForbidden {
		t.Errorf("scrape with a token lacking the policy: HTTP %d, want 403", code)
	}

	for range 3 {
		readCreds(t, root, mountPath, 0)
	}
	if _, err := rotate(root, mountPath); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	creds := readCreds(t, root, mountPath, 0)

	code, ctype, body := scrapeMetrics(t, n, scraper, mountPath)
	if code != http.StatusOK {
		t.Fatalf("scrape: HTTP %d: %s", code, body)
	}
	if !strings.HasPrefix(ctype, "text/plain; version=0.0.4") {
		t.Errorf("content type %q, want Prometheus text", ctype)
	}
	mustNotContain(t, "the scrape", string(body), map[string]string{
		"access token": accessToken(creds), "refresh token": s.currentRefresh(), "client secret": s.ClientSecret,
	})
	m := parseMetrics(t, body)
	want := func(v float64, name string, labels ...string) {
		t.Helper()
		got, ok := metricValue(m, name, labels...)
		if !ok {
			t.Errorf("no series %s%v", name, labels)
		} else if got != v {
			t.Errorf("%s%v = %v, want %v", name, labels, got, v)
		}
	}
	want(1, "vault_concur_grants_total", "grant_type", "password", "outcome", "ok")
	want(1, "vault_concur_grants_total", "grant_type", "refresh_token", "outcome", "ok")
	want(1, "vault_concur_renewal_duration_seconds", "outcome", "ok")
	want(4, "vault_concur_requests_total", "path", "creds", "outcome", "ok")
	want(4, "vault_concur_request_duration_seconds", "path", "creds", "outcome", "ok")
	want(1, "vault_concur_companies", "status", "ok")
	want(0, "vault_concur_companies", "status", "needs_bootstrap")
	want(0, "vault_concur_grants_waiting")
	want(2, "vault_concur_concur_requests_total", "endpoint", "token", "code", "2xx")
	want(1, "vault_concur_build_info", "version", pluginVersion)
	expiry, _ := metricValue(m, "vault_concur_access_token_expiry_timestamp_seconds")
	if left := expiry - float64(time.Now().Unix()); left < 3000 || left > 3600 {
		t.Errorf("access token expires in %v s, want a fresh one-hour token", left)
	}
	// The plugin reports its own process (one per Vault node).
	if rss, ok := metricValue(m, "process_resident_memory_bytes"); !ok || rss <= 0 {
		t.Errorf("process_resident_memory_bytes = %v (%v), want the plugin's RSS", rss, ok)
	}
}

// newToken creates a token with the given policies and returns it.
func newToken(t testing.TB, root *api.Client, policies ...string) string {
	t.Helper()
	sec, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, TTL: "1h"})
	if err != nil {
		t.Fatalf("create token with %v: %v", policies, err)
	}
	return sec.Auth.ClientToken
}
