package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// agentProcess is one `vault agent` run by the test, in its own process
// group (it starts children in exec mode).
type agentProcess struct {
	t       testing.TB
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// startAgent writes config (HCL) into dir/<name>.hcl and runs `vault agent` with it.
func startAgent(t testing.TB, dir, name, config string) *agentProcess {
	t.Helper()
	cfgPath := filepath.Join(dir, name+".hcl")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), vaultBin(t), "agent", "-config="+cfgPath, "-log-level=debug")
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logF.Close()
		t.Fatalf("start vault agent %s: %v", name, err)
	}
	a := &agentProcess{t: t, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logF.Close(); close(a.exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			if data, err := os.ReadFile(logPath); err == nil {
				lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
				lines = lines[max(0, len(lines)-40):]
				t.Logf("---- last lines of %s ----\n%s", logPath, strings.Join(lines, "\n"))
			}
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-a.exited
		}
	})
	return a
}

func (a *agentProcess) running() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// agentCommon is the part of both agents' configuration that logs in with a
// token from a file.
func agentCommon(addr, tokenFile string) string {
	return fmt.Sprintf(`vault {
  address = %q
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
template_config {
  exit_on_retry_failure = true
}
`, addr, tokenFile)
}

// rendered is one observed value of a rendered token: the token and when it expires.
type rendered struct {
	token     string
	expiresAt time.Time
}

func parseRendered(line string) (rendered, error) {
	tok, exp, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || tok == "" {
		return rendered{}, fmt.Errorf("want \"<token> <expires_at>\", got %d bytes", len(line))
	}
	at, err := time.Parse(time.RFC3339, exp)
	if err != nil {
		return rendered{}, fmt.Errorf("expires_at: %w", err)
	}
	return rendered{token: tok, expiresAt: at}, nil
}

// Vault Agent with default settings, as a template renderer and as a process
// supervisor (exec mode), follows the engine's renewals: it reads creds
// again right after each renewal (the ttl/rotation_period rule), never holds
// an expired token, and restarts the child once per new token.
func TestAgentFollowsRenewals(t *testing.T) {
	t.Parallel()
	// 150 s tokens, refresh_margin 2m: renewal is due 30 s after each grant and
	// made by Vault's periodic run within the following minute.
	const lifetime = 150 * time.Second
	s := newSim(t, concurtest.Options{AccessTokenTTL: lifetime})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	rt := s.NewRequestToken(s.ClientID, s.Company)
	if _, err := n.Client.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/config",
		s.configData(map[string]any{"request_token": rt, "refresh_margin": "2m"})); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if err := n.Client.Sys().PutPolicy("concur-creds", `path "concur/creds" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	dir := testDir(t)
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(newToken(t, n.Client, "concur-creds")), 0o600); err != nil {
		t.Fatal(err)
	}

	const tmpl = `{{ with secret "concur/creds" }}{{ .Data.access_token }} {{ .Data.expires_at }}{{ end }}`
	renderedFile := filepath.Join(dir, "concur-token")
	templateAgent := startAgent(t, dir, "agent-template", agentCommon(n.Addr, tokenFile)+fmt.Sprintf(`template {
  contents    = %q
  destination = %q
}
`, tmpl+"\n", renderedFile))

	// The child appends one line per start: what it was given in its environment.
	execLog := filepath.Join(dir, "exec-starts")
	child := `printf '%s %s\n' "$CONCUR_ACCESS_TOKEN" "$CONCUR_EXPIRES_AT" >> "$EXEC_LOG"; exec sleep 3600`
	execAgent := startAgent(t, dir, "agent-exec", agentCommon(n.Addr, tokenFile)+fmt.Sprintf(`env_template "CONCUR_ACCESS_TOKEN" {
  contents = %q
}
env_template "CONCUR_EXPIRES_AT" {
  contents = %q
}
exec {
  command                   = ["env", "EXEC_LOG=%s", "sh", "-c", %q]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM"
}
`, `{{ with secret "concur/creds" }}{{ .Data.access_token }}{{ end }}`,
		`{{ with secret "concur/creds" }}{{ .Data.expires_at }}{{ end }}`, execLog, child))

	w := &renewalWatch{t: t, sim: s, grants: s.GrantCalls("refresh_token")}
	const renewalsWanted = 2
	deadline := time.Now().Add(renewalsWanted*(lifetime-time.Minute+time.Minute) + 2*time.Minute)
	for {
		now := time.Now()
		w.observeGrants(now)
		w.observeFile("template", renderedFile, now)
		w.observeExec(execLog, now)
		if len(w.renewedAt) >= renewalsWanted && w.caughtUp() {
			break
		}
		if now.After(deadline) {
			t.Fatalf("after %s: %d renewals, template agent has %d tokens, exec child started %d times",
				renewalsWanted*lifetime, len(w.renewedAt), len(w.seen["template"]), len(w.seen["exec"]))
		}
		if !templateAgent.running() || !execAgent.running() {
			t.Fatalf("a vault agent exited (template running %v, exec running %v)", templateAgent.running(), execAgent.running())
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.checkLag("template")
	w.checkLag("exec")
	if n := s.ErrorCount(108); n != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times", n)
	}
}

// renewalWatch keeps what the test saw: when the engine renewed (a refresh
// grant reached the simulator), and when each consumer first had each token.
type renewalWatch struct {
	t         testing.TB
	sim       *sim
	grants    int
	renewedAt []time.Time
	seen      map[string][]time.Time // consumer -> when each new token first appeared
	last      map[string]string      // consumer -> current token
	execLines int
}

func (w *renewalWatch) observeGrants(now time.Time) {
	if g := w.sim.GrantCalls("refresh_token"); g != w.grants {
		for range g - w.grants {
			w.renewedAt = append(w.renewedAt, now)
		}
		w.grants = g
	}
}

// observe records that consumer holds r at now, failing if r has expired.
func (w *renewalWatch) observe(consumer string, r rendered, now time.Time) {
	w.t.Helper()
	if !r.expiresAt.After(now) {
		w.t.Fatalf("%s holds a token that expired at %s (now %s)", consumer, r.expiresAt.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if w.seen == nil {
		w.seen, w.last = map[string][]time.Time{}, map[string]string{}
	}
	if w.last[consumer] != r.token {
		w.last[consumer] = r.token
		w.seen[consumer] = append(w.seen[consumer], now)
	}
}

func (w *renewalWatch) observeFile(consumer, path string, now time.Time) {
	w.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return // not rendered yet
	}
	r, err := parseRendered(string(data))
	if err != nil {
		w.t.Fatalf("%s: %v", path, err)
	}
	w.observe(consumer, r, now)
}

// observeExec reads the child's start log: each start must come with a token
// different from the one before (a restart per change, none without).
func (w *renewalWatch) observeExec(path string, now time.Time) {
	w.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return
	}
	for i := w.execLines; i < len(lines); i++ {
		r, err := parseRendered(lines[i])
		if err != nil {
			w.t.Fatalf("exec child start %d: %v", i+1, err)
		}
		if i > 0 && w.last["exec"] == r.token {
			w.t.Errorf("exec child restarted (start %d) without a new token", i+1)
		}
		w.observe("exec", r, now)
	}
	w.execLines = len(lines)
	// The current child's token must not have expired either.
	r, _ := parseRendered(lines[len(lines)-1])
	w.observe("exec", r, now)
}

// caughtUp: every consumer has had a new token since the last renewal.
func (w *renewalWatch) caughtUp() bool {
	last := w.renewedAt[len(w.renewedAt)-1]
	for _, c := range []string{"template", "exec"} {
		seen := w.seen[c]
		if len(seen) == 0 || seen[len(seen)-1].Before(last) {
			return false
		}
	}
	return true
}

// checkLag: consumer took up each renewal within a few seconds (the engine's
// 5 s ttl floor, Agent's +1 s and the rendering), and had one token more
// than there were renewals (the first one).
func (w *renewalWatch) checkLag(consumer string) {
	w.t.Helper()
	const maxLag = 10 * time.Second
	seen := w.seen[consumer]
	if len(seen) != len(w.renewedAt)+1 {
		w.t.Errorf("%s had %d tokens for %d renewals, want %d", consumer, len(seen), len(w.renewedAt), len(w.renewedAt)+1)
		return
	}
	for i, at := range w.renewedAt {
		lag := seen[i+1].Sub(at)
		w.t.Logf("%s took up renewal %d after %s", consumer, i+1, lag.Round(100*time.Millisecond))
		if lag < 0 || lag > maxLag {
			w.t.Errorf("%s took up renewal %d after %s, want within %s", consumer, i+1, lag.Round(100*time.Millisecond), maxLag)
		}
	}
}
