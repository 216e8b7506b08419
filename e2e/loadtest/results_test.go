package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	targets := []target{{Name: "creds", Path: "/v1/concur/creds"}, {Name: "kv", Path: "/v1/secret/data/bench"}}
	creds := &sample{lat: us(100, 200, 300, 400), elapsed: 2 * time.Second, otherCPU: 0.4,
		cpu: processCPU{vault: 400 * time.Microsecond, plugins: []time.Duration{400 * time.Microsecond}}}
	kv := &sample{lat: us(100, 100, 200, 200, 300, 300, 400, 400), elapsed: 2 * time.Second,
		cpu: processCPU{vault: 800 * time.Microsecond, plugins: []time.Duration{0}}}
	quietCreds := &sample{lat: us(100, 300), elapsed: time.Second}
	res := &results{}
	summarize(res, targets, []*sample{creds, kv}, []*sample{quietCreds, kv}, []int{1150, 1267})
	if res.RatioRPS != 0.5 || res.RatioP50 != 1 || res.RatioP99 != 1 {
		t.Errorf("ratios %v %v %v, want 0.5 1 1", res.RatioRPS, res.RatioP50, res.RatioP99)
	}
	if res.CPURatio != 0.5 { // kv 100 µs per request, creds 200
		t.Errorf("CPU ratio %v, want 0.5", res.CPURatio)
	}
	if res.OtherCPU != 0.1 { // 0.4 CPU-seconds over 4 s
		t.Errorf("other CPU %v, want 0.1", res.OtherCPU)
	}
	if res.Targets[0].ResponseSize != 1150 || res.Targets[1].ResponseSize != 1267 || res.Targets[1].RPS != 4 {
		t.Errorf("targets %+v", res.Targets)
	}
	if q := res.Quiet; q == nil || q.RatioRPS != 0.5 || q.RatioP50 != 1 || q.RatioP99 != 0.75 || q.Targets[0].ResponseSize != 0 {
		t.Errorf("quiet %+v, want creds/kv throughput 0.5, p50 1, p99 0.75", q)
	}

	noQuiet := &results{}
	summarize(noQuiet, targets, []*sample{creds, kv}, []*sample{{}, kv}, []int{0, 0})
	if noQuiet.Quiet != nil {
		t.Errorf("quiet %+v, want none when creds had no quiet phase", noQuiet.Quiet)
	}
}
