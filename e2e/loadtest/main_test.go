package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunRejectsBadFlags(t *testing.T) {
	base := []string{"-vault-addr", "http://127.0.0.1:8200", "-sim-url", "http://127.0.0.1:18080"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-conns", "many"}, `invalid value "many" for flag -conns`},
		{[]string{"-duration", "60"}, `invalid value "60" for flag -duration`},
		{[]string{"-targets", "creds=/v1/concur/creds"}, "need at least two targets"},
		{[]string{"-targets", "creds=/v1/concur/creds,kv=/secret/data/bench"}, `bad -targets entry "kv=/secret/data/bench"`},
		{[]string{"-targets", "creds=/v1/concur/creds,=/v1/kv"}, `bad -targets entry "=/v1/kv"`},
		{[]string{"-targets", "creds=/v1/concur/creds,"}, `bad -targets entry ""`},
		{[]string{"-conns", "0"}, "1 to 1024 conns"},
		{[]string{"-conns", "1025"}, "1 to 1024 conns"},
		{[]string{"-duration", "31m"}, "a duration up to 30m"},
		{[]string{"-duration", "0s"}, "a duration up to 30m"},
		{[]string{"-phase", "0s"}, "need at least two targets"},
		{[]string{"-warmup", "-1s"}, "need at least two targets"},
		{[]string{"-vault-addr", "http://10.0.0.1:8200"}, "http://10.0.0.1:8200 is not a loopback address"},
		{[]string{"-vault-addr", "127.0.0.1:8200"}, `"127.0.0.1:8200" is not a URL`},
		{[]string{"-sim-url", ""}, `"" is not a URL`},
		{[]string{"stray"}, `unexpected arguments: ["stray"]`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append(append([]string{}, base...), tc.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want 2 and %q on stderr", tc.args, code, stdout.String(),
				stderr.String(), tc.want)
		}
	}
}

func TestRunTakesVaultAddrFromEnvironment(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://192.0.2.1:8200")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-sim-url", "http://127.0.0.1:1"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "http://192.0.2.1:8200 is not a loopback address") {
		t.Errorf("run = %d, stderr %q; want 2 naming VAULT_ADDR's address", code, stderr.String())
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "-vault-addr") {
		t.Errorf("run(-h) = %d, stderr %q; want 0 and the usage", code, stderr.String())
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8200", "http://127.0.0.2:1/", "https://localhost:8200", "http://[::1]:8200"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("checkLoopback(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"http://localhost.example.com", "http://0.0.0.0:8200", "http://[::]:1", "http://vault:8200", "/v1"} {
		if err := checkLoopback(bad); err == nil {
			t.Errorf("checkLoopback(%q): no error", bad)
		}
	}
}
