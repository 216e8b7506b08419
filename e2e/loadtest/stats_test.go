package main

import (
	"reflect"
	"testing"
	"time"
)

func us(n ...int) []time.Duration {
	var out []time.Duration
	for _, v := range n {
		out = append(out, time.Duration(v)*time.Microsecond)
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   float64
	}{
		{"empty", nil, 0.5, 0},
		{"empty max", nil, 1, 0},
		{"one sample p50", us(7), 0.5, 7},
		{"one sample p99", us(7), 0.99, 7},
		{"one sample max", us(7), 1, 7},
		{"two samples p50 is the upper", us(1, 9), 0.5, 9},
		{"ties", us(3, 3, 3, 3, 5), 0.5, 3},
		{"ties at the top", us(1, 4, 4, 4), 0.99, 4},
		{"rank floor(p*n): p50 of 1..100", us(hundred...), 0.50, 51},
		{"p90 of 1..100", us(hundred...), 0.90, 91},
		{"p99 of 1..100", us(hundred...), 0.99, 100},
		{"p0 is the minimum", us(hundred...), 0, 1},
		{"sub-microsecond", []time.Duration{1500 * time.Nanosecond}, 0.5, 1.5},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: percentile(p=%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestRound(t *testing.T) {
	for _, tc := range []struct {
		x      float64
		digits int
		want   float64
	}{{0.8449, 3, 0.845}, {1.2444, 3, 1.244}, {5752.34, 1, 5752.3}, {0.154, 2, 0.15}, {-0.0001, 2, 0}} {
		if got := round(tc.x, tc.digits); got != tc.want {
			t.Errorf("round(%v, %d) = %v, want %v", tc.x, tc.digits, got, tc.want)
		}
	}
}

func TestRatios(t *testing.T) {
	a := targetResult{RPS: 5752.3, P50Micros: 5109.5, P99Micros: 13401.1}
	b := targetResult{RPS: 6848.7, P50Micros: 4106.9, P99Micros: 14149.4}
	if rps, p50, p99 := ratios(a, b); rps != 0.84 || p50 != 1.244 || p99 != 0.947 {
		t.Errorf("ratios = %v %v %v, want the committed run's 0.84 1.244 0.947", rps, p50, p99)
	}
	for _, zero := range []targetResult{{}, {RPS: 1, P50Micros: 1}, {RPS: 1, P99Micros: 1}} {
		if rps, p50, p99 := ratios(a, zero); rps != 0 || p50 != 0 || p99 != 0 {
			t.Errorf("ratios over %+v = %v %v %v, want zeros rather than infinities", zero, rps, p50, p99)
		}
	}
}

func TestOtherCores(t *testing.T) {
	before := &cpuTimes{busy: 1000}
	after := &cpuTimes{busy: 1500} // 5 s busy
	for _, tc := range []struct {
		name          string
		before, after *cpuTimes
		ours, elapsed time.Duration
		want          float64
	}{
		{"others used 1 s in 5 s", before, after, 4 * time.Second, 5 * time.Second, 0.2},
		{"ours is all of it", before, after, 5 * time.Second, 5 * time.Second, 0},
		{"ours over-counted (tick rounding)", before, after, 6 * time.Second, 5 * time.Second, 0},
		{"no /proc/stat before", nil, after, 0, 5 * time.Second, 0},
		{"no /proc/stat after", before, nil, 0, 5 * time.Second, 0},
		{"no time", before, after, 0, 0, 0},
	} {
		if got := otherCores(tc.before, tc.after, tc.ours, tc.elapsed); got != tc.want {
			t.Errorf("%s: otherCores = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSampleResult(t *testing.T) {
	s := &sample{lat: us(300, 100, 200, 400), errors: 2, firstErr: "HTTP 503", elapsed: 2 * time.Second,
		cpu: processCPU{vault: 4 * time.Millisecond, plugins: []time.Duration{2 * time.Millisecond, 0},
			loadgen: time.Millisecond, sim: time.Hour}}
	got := s.result(target{Name: "creds", Path: "/v1/concur/creds"}, 1150)
	want := targetResult{Name: "creds", Path: "/v1/concur/creds", Requests: 4, Errors: 2, Seconds: 2, RPS: 2,
		P50Micros: 300, P90Micros: 400, P99Micros: 400, MaxMicros: 400, ResponseSize: 1150, FirstError: "HTTP 503",
		VaultCPUMicros: 1000, PluginCPUMicros: []float64{500, 0}, LoadgenCPUMicros: 250}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result =\n%+v\nwant\n%+v (the simulator's CPU is not per target)", got, want)
	}
	if got := cpuPerReq(got); got != 1750 {
		t.Errorf("cpuPerReq = %v, want 1750", got)
	}
	empty := (&sample{}).result(target{Name: "kv"}, 0)
	if !reflect.DeepEqual(empty, targetResult{Name: "kv"}) {
		t.Errorf("result of an empty sample = %+v, want only the name", empty)
	}
}

func TestSampleMerge(t *testing.T) {
	a := &sample{lat: us(1), elapsed: time.Second, otherCPU: 0.5,
		cpu: processCPU{vault: time.Second, plugins: []time.Duration{time.Second}}}
	b := &sample{lat: us(2, 3), errors: 1, firstErr: "second", elapsed: time.Second, otherCPU: 0.25,
		cpu: processCPU{vault: time.Second, plugins: []time.Duration{2 * time.Second}, loadgen: time.Second}}
	var m sample
	m.merge(a)
	m.merge(b)
	m.merge(&sample{firstErr: "third"})
	want := sample{lat: us(1, 2, 3), errors: 1, firstErr: "second", elapsed: 2 * time.Second, otherCPU: 0.75,
		cpu: processCPU{vault: 2 * time.Second, plugins: []time.Duration{3 * time.Second}, loadgen: time.Second}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("merge = %+v, want %+v", m, want)
	}
}
