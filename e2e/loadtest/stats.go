package main

import (
	"strconv"
	"time"
)

// percentile is the p-quantile (0..1) of sorted latencies in µs: the value
// at rank floor(p*n), the largest for p = 1; 0 when there are none.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(p*float64(len(sorted))))
	return micros(sorted[i])
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// round rounds x to digits decimals the way the report prints them.
func round(x float64, digits int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return p
}

// ratios compares a with b: throughput, p50 and p99, rounded to 3
// decimals; all 0 when b has no figures to divide by.
func ratios(a, b targetResult) (rps, p50, p99 float64) {
	if b.RPS <= 0 || b.P50Micros <= 0 || b.P99Micros <= 0 {
		return 0, 0, 0
	}
	return round(a.RPS/b.RPS, 3), round(a.P50Micros/b.P50Micros, 3), round(a.P99Micros/b.P99Micros, 3)
}

// cpuPerReq is the CPU per request (µs) of everything on the request path.
func cpuPerReq(t targetResult) float64 {
	c := t.VaultCPUMicros + t.LoadgenCPUMicros
	for _, p := range t.PluginCPUMicros {
		c += p
	}
	return c
}

// otherCores is the CPU (in cores) that processes other than ours used
// while the machine's busy time grew from before to after over elapsed; 0
// when /proc/stat could not be read.
func otherCores(before, after *cpuTimes, ours, elapsed time.Duration) float64 {
	if before == nil || after == nil || elapsed <= 0 {
		return 0
	}
	return max(0, (after.busySince(before)-ours).Seconds()/elapsed.Seconds())
}
