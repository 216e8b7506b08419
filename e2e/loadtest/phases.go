package main

import (
	"context"
	"fmt"
	"time"
)

// quietCores: a phase during which other processes used less CPU than this
// counts as quiet.
const quietCores = 0.15

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

// plannedPhase is one phase of the measured run: which target, for how long.
type plannedPhase struct {
	target int
	length time.Duration
}

// planPhases gives each of n targets duration in phases of phase length in
// phaseOrder; each target's last phase is cut to what it has left.
func planPhases(n int, duration, phase time.Duration) []plannedPhase {
	given := make([]time.Duration, n)
	var plan []plannedPhase
	for _, ti := range phaseOrder(n, int((duration+phase-1)/phase)) {
		d := min(phase, duration-given[ti])
		given[ti] += d
		plan = append(plan, plannedPhase{target: ti, length: d})
	}
	return plan
}

// measure runs the planned phases and returns, per target, the sample of all
// its phases and of its quiet ones; each phase is also recorded in res.Phases.
func (b *bench) measure(ctx context.Context, res *results) (all, quiet []*sample, err error) {
	for range b.o.targets {
		all, quiet = append(all, &sample{}), append(quiet, &sample{})
	}
	for _, p := range planPhases(len(b.o.targets), b.o.duration, b.o.phase) {
		t := b.o.targets[p.target]
		s, other, err := b.phase(ctx, t, p.length)
		if err != nil {
			return nil, nil, err
		}
		r := s.result(t, 0)
		res.Phases = append(res.Phases, phaseResult{Target: t.Name, Seconds: r.Seconds, Requests: r.Requests,
			RPS: r.RPS, P50Micros: r.P50Micros, P99Micros: r.P99Micros, OtherCPU: round(other, 2)})
		if other < quietCores {
			quiet[p.target].merge(s)
		}
		all[p.target].merge(s)
	}
	return all, quiet, nil
}

// phase loads t for d and records the CPU time our processes used meanwhile;
// other is the CPU (in cores) that the other processes used.
func (b *bench) phase(ctx context.Context, t target, d time.Duration) (s *sample, other float64, err error) {
	fmt.Fprintf(b.log, "phase %-8s %s\n", t.Name, d)
	req, err := b.client.vaultRequest(ctx, t.Path)
	if err != nil {
		return nil, 0, err
	}
	cpu0, machine0 := b.proc.cpuOf(b.procs), b.proc.machineCPU()
	s, err = load(ctx, b.client.hc, req, b.o.conns, d)
	if err != nil {
		return nil, 0, err
	}
	cpu1, machine1 := b.proc.cpuOf(b.procs), b.proc.machineCPU()
	s.cpu = cpu1.since(cpu0)
	other = otherCores(machine0, machine1, s.cpu.total(), s.elapsed)
	s.otherCPU = other * s.elapsed.Seconds()
	return s, other, nil
}
