// Command loadtest is the load test behind `make bench` (scripts/bench.sh starts
// the Concur simulator and a Vault dev server, registers the plugin and calls
// this program). It reads Vault paths (-targets: concur/creds, a minimal
// plugin's creds as the ceiling, companies/<name>/creds and a KV v2 secret of
// similar size) side by side in the same run through real Vault on loopback,
// and reports requests per second, p50 and p99 latency for each, the ratios
// of the -compare pairs with their spread over rounds of phases, the Concur
// token calls made during the run, and the plugin processes' RSS before and
// after.
//
// The load is closed-loop: -conns workers, each with its own keep-alive
// connection, send one request at a time. The targets run in alternating
// phases (ABBA order, -phase long each) until each has had -duration, so
// all see the same machine state. Everything goes to the given Vault and
// simulator URLs, which must be loopback addresses.
//
// Files: flags.go (options), compare.go (the -compare pairs and their
// ratios), loadtest.go (the run, step by step), phases.go
// (phase order and the measured phases), load.go (the closed-loop generator),
// client.go (HTTP to Vault and the simulator), proc.go (parsers of /proc
// contents), procfs.go (reading /proc), sample.go and stats.go (latencies to
// figures), results.go (the JSON shape), report.go (the text report).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: tests call it with their own writers.
// It returns the exit code: 0 on success or -h, 2 for bad flags, 1 when the
// load test or writing its results fails.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	res, err := loadTest(context.Background(), o, stderr)
	if err == nil {
		err = writeReports(res, o, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	return 0
}
