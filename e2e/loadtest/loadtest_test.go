package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeVault answers the few requests the load test makes of Vault and of
// the simulator's admin endpoint, on one loopback server.
type fakeVault struct {
	mu        sync.Mutex
	kv        map[string]any // what was written to secret/data/bench
	credsGets atomic.Int64
}

const fakeCreds = `{"data":{"access_token":"` + "0123456789abcdef0123456789abcdef" + `","expires_in":3600,"geolocation":"x"}}`

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/_sim/stats" && r.URL.Path != "/v1/sys/seal-status" && r.Header.Get("X-Vault-Token") != "root" {
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /v1/sys/seal-status":
		fmt.Fprint(w, `{"sealed":false,"version":"1.21.0"}`)
	case "GET /_sim/stats":
		fmt.Fprint(w, `{"calls":{"token":1},"grants":{"password":1}}`)
	case "GET /v1/concur/creds":
		f.credsGets.Add(1)
		fmt.Fprint(w, fakeCreds)
	case "POST /v1/secret/data/bench":
		var body struct{ Data map[string]any }
		if json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.kv = body.Data
		f.mu.Unlock()
	case "GET /v1/secret/data/bench":
		f.mu.Lock()
		b, _ := json.Marshal(map[string]any{"data": map[string]any{"data": f.kv}})
		f.mu.Unlock()
		_, _ = w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// A whole run, a few tens of milliseconds long, against the fake: what it
// writes, the phases in alternating order, and figures that add up. The test
// process stands in for the plugin, and its parent for Vault, so the real
// /proc is read too.
func TestRunAgainstFakeVault(t *testing.T) {
	fake := &fakeVault{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	args := []string{"-vault-addr", srv.URL, "-token", "root", "-sim-url", srv.URL + "/", "-plugins", filepath.Base(os.Args[0]),
		"-vault-pid", strconv.Itoa(os.Getppid()), "-duration", "60ms", "-phase", "20ms", "-warmup", "5ms", "-conns", "2", "-note", "fake",
		"-out-json", filepath.Join(dir, "r.json"), "-out-text", filepath.Join(dir, "r.txt")}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("run = %d, stderr:\n%s", code, stderr.String())
	}
	text, _ := os.ReadFile(filepath.Join(dir, "r.txt"))
	if string(text) != stdout.String() || !strings.Contains(stdout.String(), "note: fake\n") {
		t.Errorf("-out-text differs from stdout or lacks the note:\n%s", text)
	}
	for _, line := range []string{"warm-up creds 5ms\n", "warm-up kv 5ms\n", "phase creds    20ms\n", "phase kv       20ms\n"} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("stderr lacks %q:\n%s", line, stderr.String())
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	var res results
	if err := json.Unmarshal(js, &res); err != nil {
		t.Fatalf("-out-json: %v", err)
	}
	checkFakeRun(t, fake, &res)
}

func checkFakeRun(t *testing.T, fake *fakeVault, res *results) {
	t.Helper()
	var order []string
	for _, p := range res.Phases {
		order = append(order, p.Target)
	}
	if want := []string{"creds", "kv", "kv", "creds", "creds", "kv"}; !reflect.DeepEqual(order, want) {
		t.Errorf("phases %v, want %v", order, want)
	}
	creds, kv := res.Targets[0], res.Targets[1]
	if creds.Requests == 0 || kv.Requests == 0 || creds.Errors+kv.Errors != 0 {
		t.Errorf("requests %d and %d, errors %d and %d", creds.Requests, kv.Requests, creds.Errors, kv.Errors)
	}
	// Three reads outside the load: the lookalike's model, the check, the size.
	if got := fake.credsGets.Load(); got < int64(creds.Requests)+3 {
		t.Errorf("the fake saw %d creds reads, fewer than the %d measured + 3", got, creds.Requests)
	}
	if creds.ResponseSize != len(fakeCreds) || kv.ResponseSize == 0 {
		t.Errorf("response sizes %d and %d, want %d and some", creds.ResponseSize, kv.ResponseSize, len(fakeCreds))
	}
	if tok, _ := fake.kv["access_token"].(string); len(tok) != 32 || tok == "0123456789abcdef0123456789abcdef" {
		t.Errorf("the KV lookalike holds access_token %q, want 32 random characters", tok)
	}
	if res.TokenCallsTotal != 1 || res.TokenCallsRun != 0 || res.Machine.VaultVersion != "1.21.0" || res.Note != "fake" {
		t.Errorf("token calls %d/%d, Vault %q, note %q", res.TokenCallsRun, res.TokenCallsTotal,
			res.Machine.VaultVersion, res.Note)
	}
	if len(res.Comparisons) != 1 || res.Comparisons[0].A != "creds" || res.Comparisons[0].B != "kv" ||
		res.Comparisons[0].RatioRPS <= 0 || len(res.Comparisons[0].Rounds) != 3 {
		t.Errorf("comparisons %+v, want creds/kv (the default) with a ratio for each of the 3 rounds", res.Comparisons)
	}
	if res.DurationPerTgt != "60ms" || res.Conns != 2 {
		t.Errorf("duration %q, conns %d", res.DurationPerTgt, res.Conns)
	}
	checkFakeRunProcesses(t, res)
}

func checkFakeRunProcesses(t *testing.T, res *results) {
	t.Helper()
	if len(res.Plugins) != 1 || res.Plugins[0].PID != os.Getpid() || res.VaultRSS.PID != os.Getppid() {
		t.Fatalf("plugins %+v, vault %+v; want this process and its parent", res.Plugins, res.VaultRSS)
	}
	for _, r := range []rss{res.Plugins[0], res.VaultRSS} {
		if r.Start <= 0 || r.Before <= 0 || r.After <= 0 || r.Growth != r.After-r.Before {
			t.Errorf("RSS of %s: %+v", r.Name, r)
		}
	}
	// This process served and sent every request: CPU in clock ticks, but some.
	var cpu float64
	for _, tr := range res.Targets {
		if len(tr.PluginCPUMicros) != 1 {
			t.Fatalf("%s: plugin CPU %v, want one figure", tr.Name, tr.PluginCPUMicros)
		}
		cpu += tr.PluginCPUMicros[0] + tr.LoadgenCPUMicros
	}
	if cpu <= 0 {
		t.Errorf("no CPU time counted for this process: %+v", res.Targets)
	}
}

func TestRunFailsOnABrokenTarget(t *testing.T) {
	srv := httptest.NewServer(&fakeVault{})
	defer srv.Close()
	args := []string{"-vault-addr", srv.URL, "-token", "root", "-sim-url", srv.URL, "-plugins", "",
		"-targets", "creds=/v1/concur/creds,gone=/v1/nothing/here", "-kv-write", "", "-duration", "10ms"}
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	if want := "loadtest: first read of /v1/nothing/here: GET " + srv.URL + "/v1/nothing/here: HTTP 404"; code != 1 ||
		!strings.Contains(stderr.String(), want) || stdout.Len() != 0 {
		t.Errorf("run = %d, stdout %q, stderr %q; want 1 and %q", code, stdout.String(), stderr.String(), want)
	}
}
