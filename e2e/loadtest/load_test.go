package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadCountsEveryAnsweredRequest(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, `{"data":{}}`)
	}))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v1/concur/creds", nil)
	s, err := load(context.Background(), srv.Client(), req, 3, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.lat); n == 0 || int64(n) != served.Load() || s.errors != 0 {
		t.Errorf("%d latencies, %d errors, the server answered %d", n, s.errors, served.Load())
	}
	if s.elapsed < 20*time.Millisecond {
		t.Errorf("elapsed %v, shorter than the 20ms asked for", s.elapsed)
	}
}

// A target that fails stops the load after maxWorkerErrors+1 failures in
// one worker, however long the load was meant to last.
func TestLoadStopsOnErrors(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		http.Error(w, "sealed", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v1/concur/creds", nil)
	_, err := load(context.Background(), srv.Client(), req, 2, time.Hour)
	if err == nil || err.Error() != "/v1/concur/creds: too many errors, first: HTTP 503" {
		t.Errorf("load = %v, want too many errors naming HTTP 503", err)
	}
	if n := served.Load(); n <= maxWorkerErrors || n > 2*(maxWorkerErrors+1) {
		t.Errorf("the server saw %d requests, want %d to %d", n, maxWorkerErrors+1, 2*(maxWorkerErrors+1))
	}
}

func TestSendNeedsOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	ok, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/", nil)
	if err := send(context.Background(), srv.Client(), ok); err != nil {
		t.Errorf("send of a 200: %v", err)
	}
	other, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/moved", nil)
	if err := send(context.Background(), srv.Client(), other); err == nil || !strings.Contains(err.Error(), "HTTP 204") {
		t.Errorf("send of a 204 = %v, want HTTP 204", err)
	}
}
