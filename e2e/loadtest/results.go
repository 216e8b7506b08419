package main

import "time"

// The JSON shape of the results (docs/performance/performance-results.json); report.go
// prints the same figures as text.

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
	// Comparisons are the -compare pairs of targets, in that order.
	Comparisons     []comparison   `json:"comparisons"`
	TokenCallsRun   int            `json:"concur_token_calls_during_run"`
	TokenCallsTotal int            `json:"concur_token_calls_total"`
	SimStatsAfter   map[string]any `json:"sim_stats_after,omitempty"`
	Plugins         []rss          `json:"plugin_rss"`
	VaultRSS        rss            `json:"vault_rss"`
	Phases          []phaseResult  `json:"phases"`
	OtherCPU        float64        `json:"other_cpu_cores"` // average over the run, see phaseResult
	Note            string         `json:"note,omitempty"`
}

// summarize fills in the per-target figures and the comparisons, from the
// samples of all phases and of the quiet ones; sizes are the targets'
// response body sizes. res.Phases must be filled in already.
func summarize(res *results, targets []target, pairs []pairing, all, quiet []*sample, sizes []int) {
	var otherSecs, wall float64
	for _, s := range all {
		otherSecs += s.otherCPU
		wall += s.elapsed.Seconds()
	}
	if wall > 0 {
		res.OtherCPU = round(otherSecs/wall, 2)
	}
	var quietResults []targetResult
	for i, t := range targets {
		res.Targets = append(res.Targets, all[i].result(t, sizes[i]))
		quietResults = append(quietResults, quiet[i].result(t, 0))
	}
	for _, p := range pairs {
		res.Comparisons = append(res.Comparisons, compare(p, res.Targets, quietResults, res.Phases, len(targets)))
	}
}
