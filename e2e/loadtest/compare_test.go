package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCompare(t *testing.T) {
	targets := []target{{Name: "creds"}, {Name: "ceiling"}, {Name: "kv"}}
	got, err := parseCompare("creds/ceiling:0.97, creds/kv ,kv/ceiling", targets)
	want := []pairing{{a: 0, b: 1, goal: 0.97}, {a: 0, b: 2}, {a: 2, b: 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseCompare = %+v, %v; want %+v", got, err, want)
	}
	if got, err := parseCompare("", targets); err != nil || !reflect.DeepEqual(got, []pairing{{a: 0, b: 1}}) {
		t.Errorf(`parseCompare("") = %+v, %v; want the first target against the second`, got, err)
	}
	for _, bad := range []string{"creds", "creds/creds", "creds/nope", "/kv", "creds/kv:", "creds/kv:-1", "creds/kv:x"} {
		if _, err := parseCompare(bad, targets); err == nil || !strings.Contains(err.Error(), "-compare") {
			t.Errorf("parseCompare(%q) = %v, want an error naming -compare", bad, err)
		}
	}
}

// Rounds are n phases each, whatever order the targets ran in; a round
// cut short at the end, or one where a target served nothing, gives no ratio.
func TestRoundRatios(t *testing.T) {
	ph := func(target string, rps float64) phaseResult { return phaseResult{Target: target, RPS: rps} }
	phases := []phaseResult{
		ph("a", 90), ph("b", 100), ph("c", 50), // round 1
		ph("c", 50), ph("b", 80), ph("a", 100), // round 2, backwards
		ph("a", 0), ph("b", 100), ph("c", 1), // round 3: a had no throughput
		ph("c", 10), ph("b", 10), // cut short
	}
	if got, want := roundRatios(phases, 3, "a", "b"), []float64{0.9, 1.25}; !reflect.DeepEqual(got, want) {
		t.Errorf("a/b per round = %v, want %v", got, want)
	}
	if got, want := roundRatios(phases, 3, "b", "c"), []float64{2, 1.6, 100}; !reflect.DeepEqual(got, want) {
		t.Errorf("b/c per round = %v, want %v", got, want)
	}
	if got := roundRatios(phases, 0, "a", "b"); got != nil {
		t.Errorf("no rounds of 0 phases: %v", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.xs...)
		if got := median(tc.xs); got != tc.want || !reflect.DeepEqual(tc.xs, in) {
			t.Errorf("median(%v) = %v, want %v, input untouched", in, got, tc.want)
		}
	}
}
