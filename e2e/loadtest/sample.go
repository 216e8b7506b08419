package main

import (
	"slices"
	"time"
)

// sample holds the latencies of one or more phases of one target.
type sample struct {
	lat      []time.Duration
	errors   int
	firstErr string
	elapsed  time.Duration
	cpu      processCPU // used while the phases ran
	otherCPU float64    // CPU-seconds used by other processes meanwhile
}

func (s *sample) merge(o *sample) {
	s.lat = append(s.lat, o.lat...)
	s.errors += o.errors
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
	s.elapsed += o.elapsed
	s.otherCPU += o.otherCPU
	s.cpu.add(o.cpu)
}

// result is the sample's figures for t; size is the response body size to record.
func (s *sample) result(t target, size int) targetResult {
	if !slices.IsSorted(s.lat) {
		slices.Sort(s.lat)
	}
	secs := s.elapsed.Seconds()
	r := targetResult{Name: t.Name, Path: t.Path, Requests: len(s.lat), Errors: s.errors, Seconds: round(secs, 2),
		P50Micros: round(percentile(s.lat, 0.50), 1), P90Micros: round(percentile(s.lat, 0.90), 1),
		P99Micros: round(percentile(s.lat, 0.99), 1), MaxMicros: round(percentile(s.lat, 1), 1),
		ResponseSize: size, FirstError: s.firstErr}
	if secs > 0 {
		r.RPS = round(float64(len(s.lat))/secs, 1)
	}
	if n := len(s.lat); n > 0 {
		perReq := func(d time.Duration) float64 { return round(micros(d)/float64(n), 1) }
		r.VaultCPUMicros = perReq(s.cpu.vault)
		for _, c := range s.cpu.plugins {
			r.PluginCPUMicros = append(r.PluginCPUMicros, perReq(c))
		}
		r.LoadgenCPUMicros = perReq(s.cpu.loadgen)
	}
	return r
}
