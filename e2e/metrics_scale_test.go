package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// partnerCompanies is how many companies TestMetricsAtPartnerScale connects;
// partnerRefused of them Concur then refuses.
const (
	partnerCompanies = 2000
	partnerRefused   = 20
)

// A partner's mount through real Vault: 2,000 companies, 20 of them refused
// by Concur. One default scrape is at most 1,500 samples, names exactly the
// refused companies, and passes promlint (and promtool check metrics); with
// metrics_detail=full every company is named.
func TestMetricsAtPartnerScale(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Users: -1})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	root := n.Client
	s.configureApp(t, root)
	start := time.Now()
	uuids := connectMany(t, s, root, partnerCompanies)
	t.Logf("%d companies connected through Vault in %s", partnerCompanies, time.Since(start).Round(time.Millisecond))
	refused := map[string]bool{}
	for i := 0; i < partnerCompanies && len(refused) < partnerRefused; i += partnerCompanies / partnerRefused {
		name := fmt.Sprint("co-", i)
		s.RevokeConnection(s.ClientID, uuids[i])
		_, err := root.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/companies/"+name+"/rotate", nil)
		wantStatus(t, err, http.StatusBadGateway, "rotate of a company Concur refused")
		refused[name] = true
	}
	if err := root.Sys().PutPolicy("concur-metrics", `path "concur/metrics" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	scraper := newToken(t, root, "concur-metrics")

	body := scrapeOK(t, n, scraper)
	if got := sampleCount(body); got > 1500 {
		t.Errorf("default scrape of %d companies: %d samples, want at most 1,500", partnerCompanies, got)
	} else {
		t.Logf("default scrape of %d companies (%d refused): %d samples, %d bytes", partnerCompanies, partnerRefused, got, len(body))
	}
	lintScrape(t, body)
	named := namedCompanies(parseMetrics(t, body))
	for name := range refused {
		if named[name] != "needs_bootstrap" {
			t.Errorf("refused company %s named as %q", name, named[name])
		}
	}
	if len(named) != len(refused) {
		t.Errorf("%d companies named, want the %d refused", len(named), len(refused))
	}

	if _, err := root.Logical().Write(mountPath+"/config", map[string]any{"metrics_detail": "full"}); err != nil {
		t.Fatalf("metrics_detail=full: %v", err)
	}
	full := scrapeOK(t, n, scraper)
	lintScrape(t, full)
	if got := len(namedCompanies(parseMetrics(t, full))); got != partnerCompanies {
		t.Errorf("full mode names %d companies, want %d", got, partnerCompanies)
	}
	t.Logf("full scrape: %d samples, %d bytes", sampleCount(full), len(full))
}

// connectMany connects companies co-0 ... co-(count-1), new companies of the
// simulator, 16 writes at a time; it returns their UUIDs.
func connectMany(t *testing.T, s *sim, c *api.Client, count int) []string {
	t.Helper()
	uuids := make([]string, count)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				uuids[i] = randUUID()
				s.AddCompany(uuids[i], "")
				data := map[string]any{"company_uuid": uuids[i], "request_token": s.NewRequestToken(s.ClientID, uuids[i])}
				if _, err := c.Logical().WriteWithContext(ctxT(t, time.Minute), fmt.Sprint(mountPath, "/companies/co-", i), data); err != nil {
					t.Errorf("connect co-%d: %v", i, err)
				}
			}
		}()
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return uuids
}

func scrapeOK(t *testing.T, n *Node, token string) []byte {
	t.Helper()
	code, _, body := scrapeMetrics(t, n, token, mountPath)
	if code != http.StatusOK {
		t.Fatalf("scrape: HTTP %d: %s", code, body)
	}
	return body
}

// sampleCount is what a scraper's sample_limit counts.
func sampleCount(body []byte) int {
	count := 0
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			count++
		}
	}
	return count
}

// lintScrape runs promlint (the linter behind promtool check metrics) over a
// scrape, and Debian's promtool itself (bin/promtool, which make e2e fetches).
func lintScrape(t *testing.T, body []byte) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	promtool := requireBinary(t, filepath.Join(repoRoot, "bin", "promtool"), "run `make promtool` (Debian's prometheus package)")
	cmd := exec.CommandContext(ctxT(t, time.Minute), promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// namedCompanies is the companies a scrape names, with their status.
func namedCompanies(families map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for _, m := range families["vault_concur_company_status"].GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		out[labels["company"]] = labels["status"]
	}
	return out
}
