// Command loadtest is the load test behind `make bench` (scripts/bench.sh starts
// the Concur simulator and a Vault dev server, registers the plugin and calls
// this program). It reads concur/creds and, side by side in the same run, a
// KV v2 secret of similar size through real Vault on loopback, and reports
// requests per second, p50 and p99 latency for each, the creds/KV ratios, the
// Concur token calls made during the run, and the plugin process's RSS before
// and after.
//
// The load is closed-loop: -conns workers, each with its own keep-alive
// connection, send one request at a time. The targets run in alternating
// phases (ABBA order, -phase long each) until each has had -duration, so
// both see the same machine state. Everything goes to the given Vault and
// simulator URLs, which must be loopback addresses.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

type target struct {
	Name string `json:"name"`
	Path string `json:"path"` // e.g. /v1/concur/creds
}

type options struct {
	vaultAddr, token, simURL string
	targets                  []target
	duration, phase, warmup  time.Duration
	conns                    int
	kvPath                   string // KV v2 API path written to look like the creds response; "" skips
	pluginNames              []string
	vaultPID, simPID         int
	outJSON, outText         string
	note                     string
}

func main() {
	o := options{}
	var targets, plugins string
	flag.StringVar(&o.vaultAddr, "vault-addr", os.Getenv("VAULT_ADDR"), "Vault address (loopback only)")
	flag.StringVar(&o.token, "token", os.Getenv("VAULT_TOKEN"), "Vault token")
	flag.StringVar(&o.simURL, "sim-url", "", "Concur simulator URL, for /_sim/stats (loopback only)")
	flag.StringVar(&targets, "targets", "creds=/v1/concur/creds,kv=/v1/secret/data/bench",
		"comma-separated name=path; the ratios compare the first target with the second")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "measured time per target")
	flag.DurationVar(&o.phase, "phase", 5*time.Second, "length of one phase; targets alternate phase by phase")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured load per target before the run")
	flag.IntVar(&o.conns, "conns", 32, "concurrent closed-loop connections")
	flag.StringVar(&o.kvPath, "kv-write", "/v1/secret/data/bench", "KV v2 path to write a secret the size of the creds response to (\"\" skips)")
	flag.StringVar(&plugins, "plugins", "vault-plugin-secrets-concur", "comma-separated plugin binary names whose RSS to report (the first is the one judged)")
	flag.IntVar(&o.vaultPID, "vault-pid", 0, "pid of the Vault server; plugins are looked for among its children (0: newest process named vault)")
	flag.IntVar(&o.simPID, "sim-pid", 0, "pid of the simulator, so its CPU is not counted as other load")
	flag.StringVar(&o.outJSON, "out-json", "", "write the results as JSON here")
	flag.StringVar(&o.outText, "out-text", "", "write the human-readable report here too")
	flag.StringVar(&o.note, "note", "", "free text recorded with the results")
	flag.Parse()
	for _, t := range strings.Split(targets, ",") {
		name, path, ok := strings.Cut(strings.TrimSpace(t), "=")
		if !ok || name == "" || !strings.HasPrefix(path, "/v1/") {
			fatalf("bad -targets entry %q (want name=/v1/...)", t)
		}
		o.targets = append(o.targets, target{Name: name, Path: path})
	}
	for _, p := range strings.Split(plugins, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.pluginNames = append(o.pluginNames, p)
		}
	}
	if len(o.targets) < 2 || o.conns < 1 || o.conns > 1024 || o.duration <= 0 || o.phase <= 0 ||
		o.duration > 30*time.Minute || o.warmup < 0 {
		fatalf("need at least two targets, 1 to 1024 conns, and a duration up to 30m")
	}
	for _, u := range []string{o.vaultAddr, o.simURL} {
		if err := mustLoopback(u); err != nil {
			fatalf("%v", err)
		}
	}
	res, err := run(context.Background(), o)
	if err != nil {
		fatalf("%v", err)
	}
	text := report(res)
	fmt.Print(text)
	if o.outText != "" {
		if err := os.WriteFile(o.outText, []byte(text), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	if o.outJSON != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.outJSON, append(b, '\n'), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", args...)
	os.Exit(1)
}

func mustLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	ip := net.ParseIP(u.Hostname())
	if (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("%s is not a loopback address: this load test only talks to 127.0.0.1", raw)
	}
	return nil
}

// ---- results ---------------------------------------------------------------------------

// phaseResult is one phase of the measured run. OtherCPU is the CPU (in
// cores) that processes other than Vault, the plugins, the simulator and the
// load generator used meanwhile: anything well above 0 means the machine was
// not quiet and the phase's figures are suspect.
type phaseResult struct {
	Target    string  `json:"target"`
	Seconds   float64 `json:"seconds"`
	Requests  int     `json:"requests"`
	RPS       float64 `json:"rps"`
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
	OtherCPU  float64 `json:"other_cpu_cores"`
}

// quietCores: a phase during which other processes used less CPU than this
// counts as quiet.
const quietCores = 0.15

type quietResult struct {
	Targets  []targetResult `json:"targets"`
	RatioRPS float64        `json:"ratio_rps"`
	RatioP50 float64        `json:"ratio_p50"`
	RatioP99 float64        `json:"ratio_p99"`
}

type targetResult struct {
	Name         string  `json:"name"`
	Path         string  `json:"path"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	Seconds      float64 `json:"seconds"`
	RPS          float64 `json:"rps"`
	P50Micros    float64 `json:"p50_us"`
	P90Micros    float64 `json:"p90_us"`
	P99Micros    float64 `json:"p99_us"`
	MaxMicros    float64 `json:"max_us"`
	ResponseSize int     `json:"response_bytes"`
	FirstError   string  `json:"first_error,omitempty"`
	// CPU time per request while this target ran (µs): Vault, each plugin
	// process (in -plugins order) and the load generator itself.
	VaultCPUMicros   float64   `json:"vault_cpu_us_per_req"`
	PluginCPUMicros  []float64 `json:"plugin_cpu_us_per_req"`
	LoadgenCPUMicros float64   `json:"loadgen_cpu_us_per_req"`
}

type rss struct {
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	Start  int64  `json:"start_kib"`  // before the warm-up
	Before int64  `json:"before_kib"` // after the warm-up, before the measured run
	After  int64  `json:"after_kib"`
	Growth int64  `json:"growth_kib"` // After - Before
}

type machine struct {
	Hostname     string  `json:"hostname"`
	CPUs         int     `json:"cpus"`
	CPUModel     string  `json:"cpu_model"`
	MemTotalMiB  int64   `json:"mem_total_mib"`
	Kernel       string  `json:"kernel"`
	GoVersion    string  `json:"go_version"`
	VaultVersion string  `json:"vault_version"`
	LoadBefore   string  `json:"loadavg_before"`
	LoadAfter    string  `json:"loadavg_after"`
	StealPercent float64 `json:"cpu_steal_percent,omitempty"`
}

type results struct {
	StartedAt      time.Time      `json:"started_at"`
	Machine        machine        `json:"machine"`
	Conns          int            `json:"conns"`
	DurationPerTgt string         `json:"duration_per_target"`
	Phase          string         `json:"phase"`
	Warmup         string         `json:"warmup"`
	Targets        []targetResult `json:"targets"`
	RatioRPS       float64        `json:"ratio_rps"` // first target / second
	RatioP50       float64        `json:"ratio_p50"`
	RatioP99       float64        `json:"ratio_p99"`
	// The same ratios over the quiet phases only (other CPU below
	// quietCores), when both targets had some; see phaseResult.
	Quiet *quietResult `json:"quiet_phases,omitempty"`
	// CPURatio is the second target's CPU per request (Vault + plugins +
	// load generator) over the first's: the throughput ratio to expect when
	// the machine is CPU-bound. It does not depend on other load.
	CPURatio        float64        `json:"cpu_cost_ratio"`
	TokenCallsRun   int            `json:"concur_token_calls_during_run"`
	TokenCallsTotal int            `json:"concur_token_calls_total"`
	SimStatsAfter   map[string]any `json:"sim_stats_after,omitempty"`
	Plugins         []rss          `json:"plugin_rss"`
	VaultRSS        rss            `json:"vault_rss"`
	Phases          []phaseResult  `json:"phases"`
	OtherCPU        float64        `json:"other_cpu_cores"` // average over the run, see phaseResult
	Note            string         `json:"note,omitempty"`
}

// ---- the run ---------------------------------------------------------------------------

func run(ctx context.Context, o options) (*results, error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.conns * 2,
		MaxIdleConnsPerHost: o.conns * 2,
		MaxConnsPerHost:     o.conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	res := &results{StartedAt: time.Now().UTC(), Conns: o.conns, DurationPerTgt: o.duration.String(),
		Phase: o.phase.String(), Warmup: o.warmup.String(), Note: o.note}
	res.Machine = describeMachine(ctx, hc, o)
	steal0 := cpuSteal()

	// Setup: a KV v2 secret shaped like the creds response.
	credsBody, err := get(ctx, hc, o, o.targets[0].Path)
	if err != nil {
		return nil, fmt.Errorf("first read of %s: %w", o.targets[0].Path, err)
	}
	if o.kvPath != "" {
		if err := writeLookalike(ctx, hc, o, credsBody); err != nil {
			return nil, err
		}
	}
	for _, t := range o.targets {
		if _, err := get(ctx, hc, o, t.Path); err != nil {
			return nil, fmt.Errorf("first read of %s: %w", t.Path, err)
		}
	}

	vaultPID := o.vaultPID
	if vaultPID == 0 {
		vaultPID = findProcess("vault", 0)
	}
	pids := make([]int, len(o.pluginNames))
	res.Plugins = make([]rss, len(o.pluginNames))
	for i, name := range o.pluginNames {
		pids[i] = findProcess(name, vaultPID)
		if pids[i] == 0 {
			return nil, fmt.Errorf("no process named %s (is the plugin running?)", name)
		}
		res.Plugins[i] = rss{Name: name, PID: pids[i], Start: vmRSS(pids[i])}
	}
	res.VaultRSS = rss{Name: "vault", PID: vaultPID, Start: vmRSS(vaultPID)}

	// Warm-up: every target, unmeasured.
	for _, t := range o.targets {
		fmt.Fprintf(os.Stderr, "warm-up %s %s\n", t.Name, o.warmup)
		if _, err := load(ctx, hc, o, t.Path, o.warmup); err != nil {
			return nil, err
		}
	}
	runtime.GC()
	statsBefore, err := simStats(ctx, hc, o)
	if err != nil {
		return nil, err
	}
	for i := range res.Plugins {
		res.Plugins[i].Before = vmRSS(pids[i])
	}
	res.VaultRSS.Before = vmRSS(vaultPID)
	res.Machine.LoadBefore = loadavg()

	// The measured run: ABBA... phases until each target had o.duration.
	agg := make([]*sample, len(o.targets))
	quiet := make([]*sample, len(o.targets))
	for i := range agg {
		agg[i], quiet[i] = &sample{}, &sample{}
	}
	order := phaseOrder(len(o.targets), int((o.duration+o.phase-1)/o.phase))
	for _, ti := range order {
		left := o.duration - agg[ti].elapsed
		d := min(o.phase, left)
		if d <= 0 {
			continue
		}
		t := o.targets[ti]
		fmt.Fprintf(os.Stderr, "phase %-8s %s\n", t.Name, d)
		procs := append(append([]int{vaultPID}, pids...), os.Getpid(), o.simPID)
		cpu0, sys0 := cpuTimesOf(procs), cpuSteal()
		s, err := load(ctx, hc, o, t.Path, d)
		if err != nil {
			return nil, err
		}
		cpu1, sys1 := cpuTimesOf(procs), cpuSteal()
		var ours time.Duration
		for i := range cpu1 {
			ours += cpu1[i] - cpu0[i]
			if i < len(cpu1)-1 { // the simulator's CPU is not reported per target
				s.cpu = append(s.cpu, cpu1[i]-cpu0[i])
			}
		}
		other := 0.0
		if sys0 != nil && sys1 != nil {
			busy := time.Duration((sys1.busy - sys0.busy) * float64(time.Second) / clockTicks)
			other = max(0, (busy-ours).Seconds()/s.elapsed.Seconds())
		}
		s.otherCPU = other * s.elapsed.Seconds()
		ph := s.result(t, 0)
		res.Phases = append(res.Phases, phaseResult{Target: t.Name, Seconds: ph.Seconds, Requests: ph.Requests,
			RPS: ph.RPS, P50Micros: ph.P50Micros, P99Micros: ph.P99Micros, OtherCPU: round(other, 2)})
		if other < quietCores {
			quiet[ti].merge(s)
		}
		agg[ti].merge(s)
	}

	res.Machine.LoadAfter = loadavg()
	if st := cpuSteal(); steal0 != nil && st != nil {
		res.Machine.StealPercent = st.since(steal0)
	}
	for i := range res.Plugins {
		res.Plugins[i].After = vmRSS(pids[i])
		res.Plugins[i].Growth = res.Plugins[i].After - res.Plugins[i].Before
		if p := findProcess(o.pluginNames[i], vaultPID); p != pids[i] {
			return nil, fmt.Errorf("plugin %s restarted during the run (pid %d, now %d)", o.pluginNames[i], pids[i], p)
		}
	}
	res.VaultRSS.After = vmRSS(vaultPID)
	res.VaultRSS.Growth = res.VaultRSS.After - res.VaultRSS.Before
	statsAfter, err := simStats(ctx, hc, o)
	if err != nil {
		return nil, err
	}
	res.TokenCallsRun = tokenCalls(statsAfter) - tokenCalls(statsBefore)
	res.TokenCallsTotal = tokenCalls(statsAfter)
	res.SimStatsAfter = statsAfter

	var otherSecs, wall float64
	for _, a := range agg {
		otherSecs += a.otherCPU
		wall += a.elapsed.Seconds()
	}
	if wall > 0 {
		res.OtherCPU = round(otherSecs/wall, 2)
	}
	for i, t := range o.targets {
		body, _ := get(ctx, hc, o, t.Path)
		res.Targets = append(res.Targets, agg[i].result(t, len(body)))
	}
	a, b := res.Targets[0], res.Targets[1]
	if b.RPS > 0 && b.P50Micros > 0 && b.P99Micros > 0 {
		res.RatioRPS, res.RatioP50, res.RatioP99 = a.RPS/b.RPS, a.P50Micros/b.P50Micros, a.P99Micros/b.P99Micros
	}
	if ca, cb := cpuPerReq(a), cpuPerReq(b); ca > 0 {
		res.CPURatio = round(cb/ca, 3)
	}
	if len(quiet[0].lat) > 0 && len(quiet[1].lat) > 0 {
		q := &quietResult{}
		for i, t := range o.targets {
			q.Targets = append(q.Targets, quiet[i].result(t, 0))
		}
		qa, qb := q.Targets[0], q.Targets[1]
		q.RatioRPS, q.RatioP50, q.RatioP99 = round(qa.RPS/qb.RPS, 3), round(qa.P50Micros/qb.P50Micros, 3), round(qa.P99Micros/qb.P99Micros, 3)
		res.Quiet = q
	}
	res.RatioRPS, res.RatioP50, res.RatioP99 = round(res.RatioRPS, 3), round(res.RatioP50, 3), round(res.RatioP99, 3)
	return res, nil
}

// phaseOrder returns rounds of ABBA-style alternation: even rounds go forward
// through the targets, odd rounds backward, so drift hits all targets alike.
func phaseOrder(n, rounds int) []int {
	var out []int
	for r := 0; r < rounds; r++ {
		for i := 0; i < n; i++ {
			if r%2 == 0 {
				out = append(out, i)
			} else {
				out = append(out, n-1-i)
			}
		}
	}
	return out
}

// sample holds the latencies of one or more phases of one target.
type sample struct {
	lat      []time.Duration
	errors   int
	firstErr string
	elapsed  time.Duration
	cpu      []time.Duration // per process: vault, plugins..., the load generator
	otherCPU float64         // CPU-seconds used by other processes meanwhile
}

func (s *sample) merge(o *sample) {
	s.lat = append(s.lat, o.lat...)
	s.errors += o.errors
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
	s.elapsed += o.elapsed
	s.otherCPU += o.otherCPU
	for i, c := range o.cpu {
		if i >= len(s.cpu) {
			s.cpu = append(s.cpu, 0)
		}
		s.cpu[i] += c
	}
}

func (s *sample) result(t target, size int) targetResult {
	if !slices.IsSorted(s.lat) {
		slices.Sort(s.lat)
	}
	q := func(p float64) float64 {
		if len(s.lat) == 0 {
			return 0
		}
		i := min(len(s.lat)-1, int(p*float64(len(s.lat))))
		return float64(s.lat[i]) / float64(time.Microsecond)
	}
	secs := s.elapsed.Seconds()
	r := targetResult{Name: t.Name, Path: t.Path, Requests: len(s.lat), Errors: s.errors, Seconds: round(secs, 2),
		P50Micros: round(q(0.50), 1), P90Micros: round(q(0.90), 1), P99Micros: round(q(0.99), 1),
		ResponseSize: size, FirstError: s.firstErr}
	if len(s.lat) > 0 {
		r.MaxMicros = round(float64(s.lat[len(s.lat)-1])/float64(time.Microsecond), 1)
	}
	if secs > 0 {
		r.RPS = round(float64(len(s.lat))/secs, 1)
	}
	if n := len(s.lat); n > 0 && len(s.cpu) >= 2 {
		per := func(d time.Duration) float64 { return round(float64(d)/float64(time.Microsecond)/float64(n), 1) }
		r.VaultCPUMicros = per(s.cpu[0])
		for _, c := range s.cpu[1 : len(s.cpu)-1] {
			r.PluginCPUMicros = append(r.PluginCPUMicros, per(c))
		}
		r.LoadgenCPUMicros = per(s.cpu[len(s.cpu)-1])
	}
	return r
}

// cpuPerReq is the CPU per request of everything on the request path.
func cpuPerReq(t targetResult) float64 {
	c := t.VaultCPUMicros + t.LoadgenCPUMicros
	for _, p := range t.PluginCPUMicros {
		c += p
	}
	return c
}

func round(x float64, digits int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return p
}

// load runs o.conns closed-loop workers against path for d.
func load(ctx context.Context, hc *http.Client, o options, path string, d time.Duration) (*sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(o.vaultAddr, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", o.token)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stopping atomic.Bool
		out      = &sample{}
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < o.conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			errs, firstErr := 0, ""
			for !stopping.Load() {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				resp, err := hc.Do(req.Clone(ctx))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					if errs > 100 {
						stopping.Store(true) // something is wrong: do not hammer on
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			out.errors += errs
			if out.firstErr == "" {
				out.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	if stopping.Load() {
		return nil, fmt.Errorf("%s: too many errors, first: %s", path, out.firstErr)
	}
	return out, nil
}

func get(ctx context.Context, hc *http.Client, o options, path string) ([]byte, error) {
	return do(ctx, hc, o, http.MethodGet, strings.TrimSuffix(o.vaultAddr, "/")+path, nil, true)
}

func do(ctx context.Context, hc *http.Client, o options, method, u string, body []byte, vault bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if vault {
		req.Header.Set("X-Vault-Token", o.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, u, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// writeLookalike writes a KV v2 secret with the same keys and value sizes as
// the creds response's data (random values), so both reads move similar bytes.
func writeLookalike(ctx context.Context, hc *http.Client, o options, credsBody []byte) error {
	var creds struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(credsBody, &creds); err != nil || len(creds.Data) == 0 {
		return errors.New("the creds response has no data")
	}
	data := map[string]any{}
	for k, v := range creds.Data {
		switch v := v.(type) {
		case string:
			data[k] = randomText(len(v))
		default:
			data[k] = v
		}
	}
	body, _ := json.Marshal(map[string]any{"data": data})
	_, err := do(ctx, hc, o, http.MethodPost, strings.TrimSuffix(o.vaultAddr, "/")+o.kvPath, body, true)
	return err
}

func randomText(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func simStats(ctx context.Context, hc *http.Client, o options) (map[string]any, error) {
	b, err := do(ctx, hc, o, http.MethodGet, strings.TrimSuffix(o.simURL, "/")+"/_sim/stats", nil, false)
	if err != nil {
		return nil, fmt.Errorf("simulator stats: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("simulator stats: %w", err)
	}
	return m, nil
}

// tokenCalls is the number of token-endpoint grants (refresh + password).
func tokenCalls(stats map[string]any) int {
	g, _ := stats["grants"].(map[string]any)
	n := 0
	for _, k := range []string{"refresh_token", "password"} {
		if f, ok := g[k].(float64); ok {
			n += int(f)
		}
	}
	return n
}

// ---- processes and the machine ------------------------------------------------------------

// findProcess returns the pid of the newest process whose argv[0] has base
// name exactly name and, when parent is not 0, whose parent is parent; or 0.
func findProcess(name string, parent int) int {
	ents, _ := os.ReadDir("/proc")
	best := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv0, _, _ := bytes.Cut(b, []byte{0})
		if filepath.Base(string(argv0)) != name || (parent != 0 && parentOf(pid) != parent) {
			continue
		}
		if pid > best {
			best = pid
		}
	}
	return best
}

// cpuTimesOf returns the user+system CPU time each process used so far.
func cpuTimesOf(pids []int) []time.Duration {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state is field 3, utime 14, stime 15.
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[i] = time.Duration(ut+st) * time.Second / clockTicks
	}
	return out
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func parentOf(pid int) int {
	n, _ := strconv.Atoi(procField(fmt.Sprintf("/proc/%d/status", pid), "PPid:"))
	return n
}

// vmRSS is the VmRSS of pid in KiB, or -1.
func vmRSS(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	v := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	n, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, key) {
			return strings.TrimSpace(strings.TrimPrefix(line, key))
		}
	}
	return ""
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// cpuTimes are the machine's CPU counters from /proc/stat, in clock ticks.
type cpuTimes struct{ total, busy, steal float64 }

func cpuSteal() *cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return nil
	}
	t := &cpuTimes{}
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i < 8 { // user..steal; guest is already counted in user
			t.total += x
		}
		if i < 8 && i != 3 && i != 4 { // all but idle and iowait
			t.busy += x
		}
		if i == 7 {
			t.steal = x
		}
	}
	return t
}

func (t *cpuTimes) since(o *cpuTimes) float64 {
	if t.total <= o.total {
		return 0
	}
	return round(100*(t.steal-o.steal)/(t.total-o.total), 1)
}

func describeMachine(ctx context.Context, hc *http.Client, o options) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.CPUModel = strings.TrimSpace(strings.TrimPrefix(m.CPUModel, ":"))
	if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal:"), " kB"), 10, 64); err == nil {
		m.MemTotalMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := do(ctx, hc, o, http.MethodGet, strings.TrimSuffix(o.vaultAddr, "/")+"/v1/sys/seal-status", nil, false); err == nil {
		var s struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(b, &s) == nil {
			m.VaultVersion = s.Version
		}
	}
	return m
}

// ---- report ------------------------------------------------------------------------------

func report(r *results) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "vault-plugin-secrets-concur load test, %s\n", r.StartedAt.Format(time.RFC3339))
	mc := r.Machine
	fmt.Fprintf(&sb, "machine: %d CPUs (%s), %d MiB RAM, Linux %s, %s, Vault %s\n", mc.CPUs, mc.CPUModel, mc.MemTotalMiB, mc.Kernel, mc.GoVersion, mc.VaultVersion)
	fmt.Fprintf(&sb, "load average before/after the run: %s / %s; CPU steal during the run: %.1f%%\n", mc.LoadBefore, mc.LoadAfter, mc.StealPercent)
	fmt.Fprintf(&sb, "CPU used by other processes during the run: %.2f cores on average (0 = quiet machine)\n", r.OtherCPU)
	fmt.Fprintf(&sb, "%d closed-loop keep-alive connections; %s per target in alternating %s phases after %s warm-up each\n\n", r.Conns, r.DurationPerTgt, r.Phase, r.Warmup)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tpath\trequests\terrors\treq/s\tp50 µs\tp90 µs\tp99 µs\tmax µs\tbody bytes\t")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t\n", t.Name, t.Path, t.Requests, t.Errors, t.RPS, t.P50Micros, t.P90Micros, t.P99Micros, t.MaxMicros, t.ResponseSize)
	}
	tw.Flush()
	fmt.Fprintf(&sb, "\nCPU time per request (µs) while each target ran:\n")
	tw = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := "target\tvault\t"
	for _, p := range r.Plugins {
		hdr += p.Name + "\t"
	}
	fmt.Fprintln(tw, hdr+"load generator\t")
	for _, t := range r.Targets {
		line := fmt.Sprintf("%s\t%.1f\t", t.Name, t.VaultCPUMicros)
		for _, c := range t.PluginCPUMicros {
			line += fmt.Sprintf("%.1f\t", c)
		}
		fmt.Fprintln(tw, line+fmt.Sprintf("%.1f\t", t.LoadgenCPUMicros))
	}
	tw.Flush()
	fmt.Fprintf(&sb, "\nPhases (in run order):\n")
	tw = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\ttarget\tseconds\treq/s\tp50 µs\tp99 µs\tother CPU (cores)\t")
	for i, p := range r.Phases {
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.0f\t%.0f\t%.0f\t%.2f\t\n", i+1, p.Target, p.Seconds, p.RPS, p.P50Micros, p.P99Micros, p.OtherCPU)
	}
	tw.Flush()
	a, b := r.Targets[0].Name, r.Targets[1].Name
	fmt.Fprintf(&sb, "\n%s/%s: throughput %.2f× (target ≥ 0.80), p50 %.2f×, p99 %.2f× (target ≤ 1.50)\n", a, b, r.RatioRPS, r.RatioP50, r.RatioP99)
	if q := r.Quiet; q != nil {
		fmt.Fprintf(&sb, "%s/%s over the quiet phases only (other CPU < %.2f cores; %.0f s and %.0f s): throughput %.2f×, p50 %.2f×, p99 %.2f×\n",
			a, b, quietCores, q.Targets[0].Seconds, q.Targets[1].Seconds, q.RatioRPS, q.RatioP50, q.RatioP99)
	} else {
		fmt.Fprintf(&sb, "no quiet phase for both targets (other CPU < %.2f cores): the ratios above include other load\n", quietCores)
	}
	fmt.Fprintf(&sb, "CPU per request, %s/%s: %.2f (the throughput ratio to expect when CPU-bound; independent of other load)\n", b, a, r.CPURatio)
	fmt.Fprintf(&sb, "Concur token calls during the run: %d (since the simulator started: %d)\n", r.TokenCallsRun, r.TokenCallsTotal)
	for _, p := range r.Plugins {
		fmt.Fprintf(&sb, "plugin %s (pid %d) RSS: %.1f MiB at start, %.1f MiB before the run, %.1f MiB after: growth %+.1f MiB (target < 10)\n",
			p.Name, p.PID, mib(p.Start), mib(p.Before), mib(p.After), mib(p.Growth))
	}
	v := r.VaultRSS
	fmt.Fprintf(&sb, "vault (pid %d) RSS: %.1f MiB before the run, %.1f MiB after\n", v.PID, mib(v.Before), mib(v.After))
	if r.Note != "" {
		fmt.Fprintf(&sb, "note: %s\n", r.Note)
	}
	return sb.String()
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
