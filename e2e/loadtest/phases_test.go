package main

import (
	"reflect"
	"testing"
	"time"
)

func TestPhaseOrderAlternates(t *testing.T) {
	for _, tc := range []struct {
		n, rounds int
		want      []int
	}{
		{2, 4, []int{0, 1, 1, 0, 0, 1, 1, 0}}, // ABBA ABBA
		{3, 3, []int{0, 1, 2, 2, 1, 0, 0, 1, 2}},
		{2, 1, []int{0, 1}},
		{1, 3, []int{0, 0, 0}},
		{2, 0, nil},
	} {
		if got := phaseOrder(tc.n, tc.rounds); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("phaseOrder(%d, %d) = %v, want %v", tc.n, tc.rounds, got, tc.want)
		}
	}
}

func TestPlanPhases(t *testing.T) {
	s := time.Second
	got := planPhases(2, 12*s, 5*s)
	want := []plannedPhase{{0, 5 * s}, {1, 5 * s}, {1, 5 * s}, {0, 5 * s}, {0, 2 * s}, {1, 2 * s}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("planPhases(2, 12s, 5s) = %v, want %v", got, want)
	}
	got = planPhases(2, 3*s, 5*s)
	if want := []plannedPhase{{0, 3 * s}, {1, 3 * s}}; !reflect.DeepEqual(got, want) {
		t.Errorf("planPhases(2, 3s, 5s) = %v, want one short phase each: %v", got, want)
	}
}

// Every target gets exactly its duration, in alternating order, and the
// default run of the old two-target bench (60 s in 5 s phases) is 24 phases.
func TestPlanPhasesGivesEachTargetItsDuration(t *testing.T) {
	for _, tc := range []struct {
		n               int
		duration, phase time.Duration
		wantPhases      int
	}{
		{2, time.Minute, 5 * time.Second, 24},
		{3, time.Minute, 7 * time.Second, 27},
		{2, 10 * time.Second, 10 * time.Second, 2},
		{2, 10*time.Second + time.Millisecond, 5 * time.Second, 6},
		{4, 50 * time.Millisecond, 10 * time.Millisecond, 20},
	} {
		plan := planPhases(tc.n, tc.duration, tc.phase)
		if len(plan) != tc.wantPhases {
			t.Errorf("planPhases(%d, %v, %v): %d phases, want %d", tc.n, tc.duration, tc.phase, len(plan), tc.wantPhases)
		}
		given := make([]time.Duration, tc.n)
		order := make([]int, 0, len(plan))
		for _, p := range plan {
			if p.length <= 0 || p.length > tc.phase {
				t.Errorf("planPhases(%d, %v, %v): phase of %v", tc.n, tc.duration, tc.phase, p.length)
			}
			given[p.target] += p.length
			order = append(order, p.target)
		}
		for i, g := range given {
			if g != tc.duration {
				t.Errorf("planPhases(%d, %v, %v): target %d gets %v", tc.n, tc.duration, tc.phase, i, g)
			}
		}
		if want := phaseOrder(tc.n, len(plan)/tc.n); !reflect.DeepEqual(order, want) {
			t.Errorf("planPhases(%d, %v, %v): order %v, want %v", tc.n, tc.duration, tc.phase, order, want)
		}
	}
}

func TestPlanPhasesMatchesCommittedRun(t *testing.T) {
	r, _, _ := readGolden(t)
	var got []string
	for _, p := range r.Phases {
		got = append(got, p.Target)
	}
	duration, err1 := time.ParseDuration(r.DurationPerTgt)
	phase, err2 := time.ParseDuration(r.Phase)
	if err1 != nil || err2 != nil {
		t.Fatalf("committed duration %q, phase %q: %v %v", r.DurationPerTgt, r.Phase, err1, err2)
	}
	var want []string
	for _, p := range planPhases(len(r.Targets), duration, phase) {
		want = append(want, r.Targets[p.target].Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("committed phases %v, plan %v", got, want)
	}
}
