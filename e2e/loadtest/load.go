package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxWorkerErrors: a worker that sees more failed requests than this stops
// the whole load, so a broken target is not hammered on.
const maxWorkerErrors = 100

// load runs conns closed-loop workers for d, each sending a clone of req,
// one request at a time, on its own keep-alive connection.
func load(ctx context.Context, hc *http.Client, req *http.Request, conns int, d time.Duration) (*sample, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stopping atomic.Bool
		out      = &sample{}
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			s := work(ctx, hc, req, deadline, &stopping)
			mu.Lock()
			defer mu.Unlock()
			out.merge(s)
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	if stopping.Load() {
		return nil, fmt.Errorf("%s: too many errors, first: %s", req.URL.Path, out.firstErr)
	}
	return out, nil
}

// work is one worker: it sends req until the deadline or until stopping is
// set, and returns the latencies of the requests that succeeded.
func work(ctx context.Context, hc *http.Client, req *http.Request, deadline time.Time, stopping *atomic.Bool) *sample {
	s := &sample{lat: make([]time.Duration, 0, 1<<14)}
	for !stopping.Load() {
		t0 := time.Now()
		if !t0.Before(deadline) {
			break
		}
		if err := send(ctx, hc, req); err != nil {
			s.errors++
			if s.firstErr == "" {
				s.firstErr = err.Error()
			}
			if s.errors > maxWorkerErrors {
				stopping.Store(true)
			}
			continue
		}
		s.lat = append(s.lat, time.Since(t0))
	}
	return s
}

// send sends one request and reads the whole answer, so the connection is
// reused; anything but 200 is an error.
func send(ctx context.Context, hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req.Clone(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
