// Package pprofserve serves net/http/pprof on a loopback address when an
// environment variable names one, so `make bench` can profile a plugin
// process under load (scripts/bench.sh registers the plugin with it). Unset,
// the default, nothing is served.
package pprofserve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof" // #nosec G108 -- served only on the loopback address CONCUR_PLUGIN_PPROF_ADDR names, never by default
	"os"
	"time"
)

// Env names a loopback address (such as 127.0.0.1:6060) on which a plugin
// serves net/http/pprof.
const Env = "CONCUR_PLUGIN_PPROF_ADDR"

// FromEnv serves the pprof handlers on the address Env names, if any.
func FromEnv() (net.Listener, error) { return Serve(os.Getenv(Env)) }

// Serve serves the pprof handlers on addr, which must be a loopback IP and
// port; "" serves nothing. The listener is returned for tests to close.
func Serve(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s=%q: want a loopback IP address and port", Env, addr)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Env, err)
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
