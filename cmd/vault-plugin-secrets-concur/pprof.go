package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof" // #nosec G108 -- served only on the loopback address CONCUR_PLUGIN_PPROF_ADDR names, never by default
	"time"
)

// pprofEnv names a loopback address (such as 127.0.0.1:6060) on which the
// plugin serves net/http/pprof, so `make bench` can profile it under load
// (scripts/bench.sh registers the plugin with it). Unset, the default,
// nothing is served.
const pprofEnv = "CONCUR_PLUGIN_PPROF_ADDR"

// servePprof serves the pprof handlers on addr, which must be a loopback IP
// and port; "" serves nothing. The listener is returned for tests to close.
func servePprof(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s=%q: want a loopback IP address and port", pprofEnv, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pprofEnv, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // named profiles: heap, allocs (?seconds=N for a delta), ...
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	// No WriteTimeout: a CPU profile answers after its ?seconds=N.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends when the process does
	return ln, nil
}
