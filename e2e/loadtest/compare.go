package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// pairing is one -compare entry: target A read against target B, with an
// optional throughput goal for A/B (0: none).
type pairing struct {
	a, b int
	goal float64
}

// parseCompare reads -compare: a/b or a/b:goal entries naming targets,
// separated by commas; "" compares the first target with the second.
func parseCompare(v string, targets []target) ([]pairing, error) {
	if strings.TrimSpace(v) == "" {
		return []pairing{{a: 0, b: 1}}, nil
	}
	index := func(name string) int {
		return slices.IndexFunc(targets, func(t target) bool { return t.Name == name })
	}
	var out []pairing
	for _, e := range splitList(v) {
		pair, goal, hasGoal := strings.Cut(e, ":")
		an, bn, _ := strings.Cut(pair, "/")
		p := pairing{a: index(an), b: index(bn)}
		if p.a < 0 || p.b < 0 || p.a == p.b {
			return nil, fmt.Errorf("bad -compare entry %q: want two different -targets names as a/b", e)
		}
		if hasGoal {
			g, err := strconv.ParseFloat(goal, 64)
			if err != nil || g <= 0 {
				return nil, fmt.Errorf("bad -compare goal in %q: want a/b:ratio such as creds/kv:0.8", e)
			}
			p.goal = g
		}
		out = append(out, p)
	}
	return out, nil
}

// comparison is target A against target B in the same run. The ratios
// are A over B, except CPURatio; the round figures are A's throughput over
// B's within each round of phases (each round gives every target one phase),
// so they show the spread of the ratio over the run.
type comparison struct {
	A        string  `json:"a"`
	B        string  `json:"b"`
	Goal     float64 `json:"goal_rps,omitempty"`
	RatioRPS float64 `json:"ratio_rps"`
	RatioP50 float64 `json:"ratio_p50"`
	RatioP99 float64 `json:"ratio_p99"`
	// CPURatio is B's CPU per request (Vault + plugins + load generator)
	// over A's: the throughput ratio to expect when the machine is
	// CPU-bound. It does not depend on other load.
	CPURatio    float64   `json:"cpu_cost_ratio"`
	Rounds      []float64 `json:"round_ratios_rps"`
	RoundMedian float64   `json:"round_median_rps"`
	RoundMin    float64   `json:"round_min_rps"`
	RoundMax    float64   `json:"round_max_rps"`
	// The throughput, p50 and p99 ratios over the quiet phases only, when
	// both targets had some (see phaseResult).
	Quiet *quietRatios `json:"quiet_phases,omitempty"`
}

type quietRatios struct {
	SecondsA float64 `json:"seconds_a"`
	SecondsB float64 `json:"seconds_b"`
	RatioRPS float64 `json:"ratio_rps"`
	RatioP50 float64 `json:"ratio_p50"`
	RatioP99 float64 `json:"ratio_p99"`
}

// compare is p's comparison from the per-target results of all phases and
// of the quiet ones (nil: none), and the phases in run order, n per round.
func compare(p pairing, all, quiet []targetResult, phases []phaseResult, n int) comparison {
	a, b := all[p.a], all[p.b]
	c := comparison{A: a.Name, B: b.Name, Goal: p.goal}
	c.RatioRPS, c.RatioP50, c.RatioP99 = ratios(a, b)
	if ca, cb := cpuPerReq(a), cpuPerReq(b); ca > 0 {
		c.CPURatio = round(cb/ca, 3)
	}
	c.Rounds = roundRatios(phases, n, a.Name, b.Name)
	if len(c.Rounds) > 0 {
		c.RoundMedian, c.RoundMin, c.RoundMax = round(median(c.Rounds), 3), slices.Min(c.Rounds), slices.Max(c.Rounds)
	}
	if quiet != nil && quiet[p.a].Requests > 0 && quiet[p.b].Requests > 0 {
		q := &quietRatios{SecondsA: quiet[p.a].Seconds, SecondsB: quiet[p.b].Seconds}
		q.RatioRPS, q.RatioP50, q.RatioP99 = ratios(quiet[p.a], quiet[p.b])
		c.Quiet = q
	}
	return c
}

// roundRatios is a's throughput over b's in each full round of n phases
// (phaseOrder gives every target one phase per round).
func roundRatios(phases []phaseResult, n int, a, b string) []float64 {
	var out []float64
	for i := 0; n > 0 && i+n <= len(phases); i += n {
		var ra, rb float64
		for _, ph := range phases[i : i+n] {
			switch ph.Target {
			case a:
				ra = ph.RPS
			case b:
				rb = ph.RPS
			}
		}
		if ra > 0 && rb > 0 {
			out = append(out, round(ra/rb, 3))
		}
	}
	return out
}

// median of xs (not empty): the middle value, or the mean of the two middle ones.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
