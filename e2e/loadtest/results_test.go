package main

import (
	"reflect"
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
	res := &results{Phases: []phaseResult{{Target: "creds", RPS: 2}, {Target: "kv", RPS: 4}, {Target: "kv", RPS: 4},
		{Target: "creds", RPS: 3}}}
	summarize(res, targets, []pairing{{a: 0, b: 1, goal: 0.8}}, []*sample{creds, kv}, []*sample{quietCreds, kv}, []int{1150, 1267})
	if len(res.Comparisons) != 1 {
		t.Fatalf("comparisons %+v, want one", res.Comparisons)
	}
	c := res.Comparisons[0]
	want := comparison{A: "creds", B: "kv", Goal: 0.8, RatioRPS: 0.5, RatioP50: 1, RatioP99: 1,
		CPURatio: 0.5, // kv 100 µs per request, creds 200
		Rounds:   []float64{0.5, 0.75}, RoundMedian: 0.625, RoundMin: 0.5, RoundMax: 0.75,
		Quiet: &quietRatios{SecondsA: 1, SecondsB: 2, RatioRPS: 0.5, RatioP50: 1, RatioP99: 0.75}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("comparison\n%+v (quiet %+v)\nwant\n%+v (quiet %+v)", c, c.Quiet, want, want.Quiet)
	}
	if res.OtherCPU != 0.1 { // 0.4 CPU-seconds over 4 s
		t.Errorf("other CPU %v, want 0.1", res.OtherCPU)
	}
	if res.Targets[0].ResponseSize != 1150 || res.Targets[1].ResponseSize != 1267 || res.Targets[1].RPS != 4 {
		t.Errorf("targets %+v", res.Targets)
	}

	noQuiet := &results{}
	summarize(noQuiet, targets, []pairing{{a: 0, b: 1}}, []*sample{creds, kv}, []*sample{{}, kv}, []int{0, 0})
	if q := noQuiet.Comparisons[0].Quiet; q != nil {
		t.Errorf("quiet %+v, want none when creds had no quiet phase", q)
	}
}
