package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// target is one Vault path the load test reads.
type target struct {
	Name string `json:"name"`
	Path string `json:"path"` // e.g. /v1/concur/creds
}

// options are the command line's settings.
type options struct {
	vaultAddr, token, simURL string
	targets                  []target
	pairs                    []pairing // -compare
	duration, phase, warmup  time.Duration
	conns                    int
	kvPath                   string // KV v2 API path written to look like the creds response; "" skips
	pluginNames              []string
	vaultPID, simPID         int
	outJSON, outText         string
	note                     string
}

// parseFlags reads and checks the command line; the flag package's own
// messages and -h go to stderr.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	var targets, plugins, pairs string
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.vaultAddr, "vault-addr", os.Getenv("VAULT_ADDR"), "Vault address (loopback only)")
	fs.StringVar(&o.token, "token", os.Getenv("VAULT_TOKEN"), "Vault token")
	fs.StringVar(&o.simURL, "sim-url", "", "Concur simulator URL, for /_sim/stats (loopback only)")
	fs.StringVar(&targets, "targets", "creds=/v1/concur/creds,kv=/v1/secret/data/bench",
		"comma-separated name=path; the first is the one whose response the KV lookalike copies")
	fs.StringVar(&pairs, "compare", "",
		"comma-separated a/b or a/b:goal pairs of target names to compare (goal: a/b throughput); default: first/second")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "measured time per target")
	fs.DurationVar(&o.phase, "phase", 5*time.Second, "length of one phase; targets alternate phase by phase")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured load per target before the run")
	fs.IntVar(&o.conns, "conns", 32, "concurrent closed-loop connections")
	fs.StringVar(&o.kvPath, "kv-write", "/v1/secret/data/bench",
		"KV v2 path to write a secret the size of the creds response to (\"\" skips)")
	fs.StringVar(&plugins, "plugins", "vault-plugin-secrets-concur",
		"comma-separated plugin binary names whose RSS to report (the first is the one judged)")
	fs.IntVar(&o.vaultPID, "vault-pid", 0,
		"pid of the Vault server; plugins are looked for among its children (0: newest process named vault)")
	fs.IntVar(&o.simPID, "sim-pid", 0, "pid of the simulator, so its CPU is not counted as other load")
	fs.StringVar(&o.outJSON, "out-json", "", "write the results as JSON here")
	fs.StringVar(&o.outText, "out-text", "", "write the human-readable report here too")
	fs.StringVar(&o.note, "note", "", "free text recorded with the results")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if o.targets, err = parseTargets(targets); err != nil {
		return nil, err
	}
	if o.pairs, err = parseCompare(pairs, o.targets); err != nil {
		return nil, err
	}
	o.pluginNames = splitList(plugins)
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// parseTargets reads -targets: name=/v1/path entries separated by commas.
func parseTargets(v string) ([]target, error) {
	var out []target
	for _, t := range strings.Split(v, ",") {
		name, path, ok := strings.Cut(strings.TrimSpace(t), "=")
		if !ok || name == "" || !strings.HasPrefix(path, "/v1/") {
			return nil, fmt.Errorf("bad -targets entry %q (want name=/v1/...)", t)
		}
		out = append(out, target{Name: name, Path: path})
	}
	return out, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (o *options) check() error {
	if len(o.targets) < 2 || o.conns < 1 || o.conns > 1024 || o.duration <= 0 || o.phase <= 0 ||
		o.duration > 30*time.Minute || o.warmup < 0 {
		return errors.New("need at least two targets, 1 to 1024 conns, and a duration up to 30m")
	}
	for _, u := range []string{o.vaultAddr, o.simURL} {
		if err := checkLoopback(u); err != nil {
			return err
		}
	}
	return nil
}

// checkLoopback keeps the load off every host but this one.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	ip := net.ParseIP(u.Hostname())
	if (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("%s is not a loopback address: this load test only talks to 127.0.0.1", raw)
	}
	return nil
}
