package main

import "time"

// The JSON shape of the results (docs/performance-results.json); report.go
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

// summarize fills in the per-target figures and the ratios of the first
// target to the second, from the samples of all phases and of the quiet
// ones; sizes are the targets' response body sizes.
func summarize(res *results, targets []target, all, quiet []*sample, sizes []int) {
	var otherSecs, wall float64
	for _, s := range all {
		otherSecs += s.otherCPU
		wall += s.elapsed.Seconds()
	}
	if wall > 0 {
		res.OtherCPU = round(otherSecs/wall, 2)
	}
	for i, t := range targets {
		res.Targets = append(res.Targets, all[i].result(t, sizes[i]))
	}
	a, b := res.Targets[0], res.Targets[1]
	res.RatioRPS, res.RatioP50, res.RatioP99 = ratios(a, b)
	if ca, cb := cpuPerReq(a), cpuPerReq(b); ca > 0 {
		res.CPURatio = round(cb/ca, 3)
	}
	if len(quiet[0].lat) > 0 && len(quiet[1].lat) > 0 {
		q := &quietResult{}
		for i, t := range targets {
			q.Targets = append(q.Targets, quiet[i].result(t, 0))
		}
		q.RatioRPS, q.RatioP50, q.RatioP99 = ratios(q.Targets[0], q.Targets[1])
		res.Quiet = q
	}
}
