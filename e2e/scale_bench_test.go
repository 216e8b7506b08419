package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Partner-scale measurements through real Vault, for `make bench` (scripts/bench.sh):
// skipped unless E2E_SCALE=1. They record figures (E2E_SCALE_OUT, a text file, and the test
// log) and assert nothing about time or memory. E2E_SCALE_COMPANIES (default 10000) is the
// large mount of the scrape and start-up measurements, E2E_SCALE_HA_COMPANIES (default
// 2000) the companies of the fail-over.

func scaleEnv(t *testing.T) {
	t.Helper()
	if os.Getenv("E2E_SCALE") != "1" {
		t.Skip("a measurement for make bench: set E2E_SCALE=1")
	}
}

func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// record logs a measurement and appends it to E2E_SCALE_OUT.
func record(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	path := os.Getenv("E2E_SCALE_OUT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Fatal(err)
	}
}

// scrapeFigures are one mount's scrape of concur/metrics?format=prometheus through Vault:
// samples (lines that are not comments), bytes, the median time of five scrapes after one
// unmeasured, and how many of the failing companies it names.
type scrapeFigures struct {
	samples, bytes, failingNamed int
	median, first                time.Duration
}

func measureScrape(t testing.TB, n *Node, failing []company) scrapeFigures {
	t.Helper()
	var f scrapeFigures
	var times []time.Duration
	var body []byte
	for i := range 6 {
		start := time.Now()
		status, _, b := scrapeMetrics(t, n, n.RootToken, mountPath)
		took := time.Since(start)
		if status != http.StatusOK {
			t.Fatalf("scrape: HTTP %d", status)
		}
		if i == 0 {
			f.first = took
			continue
		}
		times, body = append(times, took), b
	}
	slices.Sort(times)
	f.median, f.bytes = times[len(times)/2], len(body)
	for _, line := range bytes.Split(body, []byte("\n")) {
		if len(line) > 0 && line[0] != '#' {
			f.samples++
		}
	}
	for _, co := range failing {
		if bytes.Contains(body, []byte(`"`+co.name+`"`)) {
			f.failingNamed++
		}
	}
	return f
}

// failCompanies makes Concur refuse each company's refresh token (its connection revoked)
// and has the engine find out: each ends needs_bootstrap.
func (s *sim) failCompanies(t testing.TB, n *Node, cos []company) {
	t.Helper()
	eachParallel(t, cos, 4, func(co company) error {
		s.RevokeConnection(s.ClientID, co.uuid)
		if _, err := rotate(n.Client, mountPath+"/companies/"+co.name); err == nil {
			return fmt.Errorf("rotate of a revoked company succeeded")
		}
		return nil
	})
}

// Scrape of concur/metrics at 2,000 and E2E_SCALE_COMPANIES companies (20 of them failing),
// then the plugin's start-up with them all stored: `vault plugin reload`, the first creds
// read, the first LIST of every company and the first scrape, and the plugin's memory.
// One raft node, as operators run Vault.
func TestScaleMetricsAndStartup(t *testing.T) {
	scaleEnv(t)
	large := envInt(t, "E2E_SCALE_COMPANIES", 10000)
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageRaft)
	SetupPlugin(t, mountPath, n)
	s.configureApp(t, n.Client)

	start := time.Now()
	cos := s.connectMany(t, n.Client, "co", min(2000, large), 8)
	var failing []company
	for i := 50; i < len(cos) && len(failing) < 20; i += 100 {
		failing = append(failing, cos[i])
	}
	s.failCompanies(t, n, failing)
	record(t, "setup: %d companies connected through Vault in %s", len(cos), time.Since(start).Round(time.Second))
	scrapeAt := func() {
		f := measureScrape(t, n, failing)
		record(t, "scrape at %d companies (%d failing): %d samples, %d bytes, median %.1f ms (first %.1f ms), names %d of the %d failing",
			len(cos), len(failing), f.samples, f.bytes, ms(f.median), ms(f.first), f.failingNamed, len(failing))
	}
	scrapeAt()
	if large > len(cos) {
		start = time.Now()
		cos = append(cos, s.connectMany(t, n.Client, "cx", large-len(cos), 8)...)
		record(t, "setup: %d companies connected through Vault in %s", len(cos), time.Since(start).Round(time.Second))
		scrapeAt()
	}
	measureStartup(t, n, cos)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measureStartup reloads the plugin and times its first requests.
func measureStartup(t testing.TB, n *Node, cos []company) {
	t.Helper()
	before := n.pluginRSSKiB()
	start := time.Now()
	vaultCLI(t, n, "plugin", "reload", "-plugin="+pluginName)
	reload := time.Since(start)
	start = time.Now()
	readCreds(t, n.Client, mountPath+"/companies/"+cos[len(cos)/2].name, 0)
	first := time.Since(start)
	rssFirst := n.pluginRSSKiB()
	start = time.Now()
	keys, _ := listDetailed(t, n, n.RootToken, "")
	list := time.Since(start)
	rssList := n.pluginRSSKiB()
	start = time.Now()
	status, _, _ := scrapeMetrics(t, n, n.RootToken, mountPath)
	scrape := time.Since(start)
	if status != http.StatusOK || len(keys) != len(cos) {
		t.Errorf("after the reload: scrape HTTP %d, LIST %d of %d companies", status, len(keys), len(cos))
	}
	record(t, "start-up with %d companies stored: vault plugin reload %.0f ms; first creds read %.1f ms; "+
		"first LIST of all (key_info) %.0f ms; first scrape after it %.0f ms; plugin RSS %.1f MiB before the reload (all loaded), "+
		"%.1f MiB after the first read, %.1f MiB after the LIST",
		len(cos), ms(reload), ms(first), ms(list), ms(scrape), mib(before), mib(rssFirst), mib(rssList))
}

func mib(kib int) float64 { return float64(kib) / 1024 }

// A three-node raft cluster with E2E_SCALE_HA_COMPANIES companies: the active node killed;
// how long until the new active node serves the first company's creds and all of them,
// Concur token calls in that pass, the new node's plugin memory.
func TestScaleFailover(t *testing.T) {
	scaleEnv(t)
	f := runFailover(t, envInt(t, "E2E_SCALE_HA_COMPANIES", 2000))
	record(t, "fail-over, 3-node raft, %d companies (connected in %s): active node killed (SIGKILL); "+
		"new active node after %.1f s, first company's creds served after %.1f s, all %d served after %.1f s; "+
		"%d Concur token calls; %d of %d served their stored token; new node's plugin RSS %.1f MiB",
		f.companies, f.populate.Round(time.Second), f.activeAfter.Seconds(), f.firstServedAt.Seconds(), len(f.creds),
		f.allServedAt.Seconds(), f.tokenCalls, f.sameTokens, f.companies, mib(f.pluginRSSKiB))
}
