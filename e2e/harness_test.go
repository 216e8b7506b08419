// Package e2e runs the plugin inside real Vault servers (bin/vault, built from tools/) and
// drives them through the official Go client, as operators and applications would.
//
// Binaries: VAULT_BIN (default <repo>/bin/vault) and PLUGIN_BIN (default
// <repo>/bin/vault-plugin-secrets-concur, this tree's build, stamped pluginVersion).
// PLUGIN_BIN_V010 (default <repo>/bin/vault-plugin-secrets-concur-v0.1.0) is the released
// v0.1.0 plugin, built from its commit, for the upgrade test; when it is missing the test
// runs `make plugin-v0.1.0`. `make e2e` builds all of them first. E2E_KEEP=1 keeps every
// server's directory (config, storage, vault.log, audit.log) and prints where it is.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

const (
	pluginName    = "vault-plugin-secrets-concur"
	pluginVersion = "v0.2.0" // this tree's build (the Makefile's default VERSION)
	pluginV010    = "v0.1.0" // the release before storage moved to one entry per company
	mountPath     = "concur"
)

var (
	repoRoot      string
	vaultBinPath  string
	pluginBinCur  string
	pluginBinV010 string
	keepDirs      bool
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	repoRoot = filepath.Dir(wd)
	vaultBinPath = envOr("VAULT_BIN", filepath.Join(repoRoot, "bin", "vault"))
	pluginBinCur = envOr("PLUGIN_BIN", filepath.Join(repoRoot, "bin", pluginName))
	pluginBinV010 = envOr("PLUGIN_BIN_V010", filepath.Join(repoRoot, "bin", pluginName+"-"+pluginV010))
	keepDirs = os.Getenv("E2E_KEEP") == "1"
	// The client library and the servers must not pick up the developer's own Vault
	// (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, ...).
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VAULT_") {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		if abs, err := filepath.Abs(v); err == nil {
			return abs
		}
		return v
	}
	return def
}

func requireBinary(t testing.TB, path, hint string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("binary %s not found or not executable (%v); %s", path, err, hint)
	}
	return path
}

func vaultBin(t testing.TB) string {
	return requireBinary(t, vaultBinPath, "run `make e2e` or scripts/vault.sh, or set VAULT_BIN")
}

func pluginBin(t testing.TB) string {
	return requireBinary(t, pluginBinCur, "run `make build` (or `make e2e`), or set PLUGIN_BIN")
}

// pluginBinV010Path returns the released v0.1.0 plugin, building it (make plugin-v0.1.0:
// that commit from git history) when missing.
var buildV010Once sync.Once

func pluginBinV010Path(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(pluginBinV010); err != nil {
		buildV010Once.Do(func() {
			cmd := exec.CommandContext(context.Background(), "make", "--no-print-directory", "plugin-v0.1.0",
				"PLUGIN_BIN_V010="+pluginBinV010)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("building %s: %v\n%s", pluginBinV010, err, out)
			}
		})
	}
	return requireBinary(t, pluginBinV010, "run `make e2e` (it builds the "+pluginV010+" plugin), or set PLUGIN_BIN_V010")
}

// ---------------------------------------------------------------------------------------
// Ports and directories

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort returns a loopback TCP port that was free a moment ago and that this process has
// not handed out before.
func freePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsUsed[p] {
			portsUsed[p] = true
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

func testDir(t testing.TB) string {
	t.Helper()
	if !keepDirs {
		return t.TempDir()
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	d, err := os.MkdirTemp("", "e2e-"+name+"-") //nolint:usetesting // E2E_KEEP: these files outlive the test
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("E2E_KEEP: files of %s are in %s", t.Name(), d)
	return d
}

// ---------------------------------------------------------------------------------------
// A Vault server process

type storageKind string

const (
	storageInmem storageKind = "inmem"
	storageRaft  storageKind = "raft"
)

type nodeConfig struct {
	Name      string
	Storage   storageKind
	RetryJoin []string // leader API addresses for raft retry_join
}

// Node is one `vault server` process with its own directory: config.hcl, data/ (file or
// raft storage), plugins/ (plugin_directory) and vault.log (stdout+stderr at trace level).
type Node struct {
	t           testing.TB
	cfg         nodeConfig
	Dir         string
	PluginDir   string
	LogPath     string
	APIPort     int
	ClusterPort int
	Addr        string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logF   *os.File

	// Filled in by Init (or copied from the cluster's first node).
	RootToken string
	UnsealKey string
	Client    *api.Client // root token once known
}

func newNode(t testing.TB, dir string, cfg nodeConfig) *Node {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "vault"
	}
	if cfg.Storage == "" {
		cfg.Storage = storageInmem
	}
	n := &Node{
		t:           t,
		cfg:         cfg,
		Dir:         dir,
		PluginDir:   filepath.Join(dir, "plugins"),
		LogPath:     filepath.Join(dir, "vault.log"),
		APIPort:     freePort(t),
		ClusterPort: freePort(t),
	}
	n.Addr = fmt.Sprintf("http://127.0.0.1:%d", n.APIPort)
	for _, d := range []string{n.PluginDir, filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(n.configPath(), []byte(n.configHCL()), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Client = n.NewClient("")
	t.Cleanup(func() {
		if t.Failed() {
			n.dumpLogTail(80)
		}
		n.Stop()
	})
	return n
}

func (n *Node) configPath() string { return filepath.Join(n.Dir, "config.hcl") }

func (n *Node) configHCL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ui = false\ndisable_mlock = true\nlog_level = \"trace\"\n")
	// sys/raw (root only) lets tests damage a storage entry as a disk or an operator's edit would.
	b.WriteString("raw_storage_endpoint = true\n")
	fmt.Fprintf(&b, "plugin_directory = %q\n", n.PluginDir)
	fmt.Fprintf(&b, "api_addr = %q\ncluster_addr = %q\n", n.Addr, fmt.Sprintf("https://127.0.0.1:%d", n.ClusterPort))
	fmt.Fprintf(&b, "listener \"tcp\" {\n  address = \"127.0.0.1:%d\"\n  cluster_address = \"127.0.0.1:%d\"\n  tls_disable = true\n}\n",
		n.APIPort, n.ClusterPort)
	data := filepath.Join(n.Dir, "data")
	switch n.cfg.Storage {
	case storageInmem:
		b.WriteString("storage \"inmem\" {}\n")
	case storageRaft:
		fmt.Fprintf(&b, "storage \"raft\" {\n  path = %q\n  node_id = %q\n  performance_multiplier = 1\n", data, n.cfg.Name)
		for _, addr := range n.cfg.RetryJoin {
			fmt.Fprintf(&b, "  retry_join {\n    leader_api_addr = %q\n  }\n", addr)
		}
		b.WriteString("}\n")
	default:
		n.t.Fatalf("unknown storage %q", n.cfg.Storage)
	}
	return b.String()
}

// NewClient returns an API client for this node with the given token ("" for none).
// Retries are off so that tests see every status code as the server sent it.
func (n *Node) NewClient(token string) *api.Client {
	n.t.Helper()
	conf := api.DefaultConfig()
	conf.Address = n.Addr
	conf.MaxRetries = 0
	conf.Timeout = 90 * time.Second
	c, err := api.NewClient(conf)
	if err != nil {
		n.t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// Start launches `vault server -config=... -log-level=trace` in its own process group and
// waits until the HTTP listener answers (sealed or not).
func (n *Node) Start() {
	n.t.Helper()
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		n.t.Fatalf("%s already running", n.cfg.Name)
	}
	logF, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.mu.Unlock()
		n.t.Fatal(err)
	}
	fmt.Fprintf(logF, "==== e2e: starting %s at %s ====\n", n.cfg.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.CommandContext(context.Background(), vaultBin(n.t), "server", "-config="+n.configPath(), "-log-level=trace")
	cmd.Dir = n.Dir
	cmd.Env = cleanEnv()
	cmd.Stdout = logF
	cmd.Stderr = logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logF.Close()
		n.mu.Unlock()
		n.t.Fatalf("start %s: %v", n.cfg.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.cmd, n.exited, n.logF = cmd, exited, logF
	n.mu.Unlock()

	n.waitFor("HTTP listener", 60*time.Second, func() (bool, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, n.Addr+"/v1/sys/seal-status", nil)
		if err != nil {
			return false, err
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet: keep waiting
		}
		resp.Body.Close()
		return true, nil
	})
}

var probeClient = &http.Client{Timeout: 5 * time.Second}

// cleanEnv is the test process environment without VAULT_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

// Running reports whether the server process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the server's process group (Vault and its plugin processes), waits
// for it to exit, and falls back to SIGKILL after 20 s. It is safe to call twice.
func (n *Node) Stop() {
	n.mu.Lock()
	cmd, exited, logF := n.cmd, n.exited, n.logF
	n.cmd, n.exited, n.logF = nil, nil, nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		n.t.Logf("%s did not stop within 20s; killing it", n.cfg.Name)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// Plugin processes normally exit with Vault; make sure nothing of the group is left.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if logF != nil {
		logF.Close()
	}
}

// Restart stops the server and starts it again with the same directory and ports.
func (n *Node) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}

// waitFor polls cond every 100 ms until it returns true, the timeout passes (test failure),
// or the server process exits (test failure with the log's tail).
func (n *Node) waitFor(what string, timeout time.Duration, cond func() (bool, error)) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		n.mu.Lock()
		exited := n.exited
		n.mu.Unlock()
		if exited != nil {
			select {
			case <-exited:
				n.t.Fatalf("%s: vault process exited while waiting for %s; log %s", n.cfg.Name, what, n.LogPath)
			default:
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: timed out after %s waiting for %s (last error: %v)", n.cfg.Name, timeout, what, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *Node) dumpLogTail(lines int) {
	data, err := os.ReadFile(n.LogPath)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	n.t.Logf("---- last %d lines of %s ----\n%s", len(all), n.LogPath, strings.Join(all, "\n"))
}

// Init runs `vault operator init -key-shares=1 -key-threshold=1` and keeps the key and root token.
func (n *Node) Init() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := n.NewClient("").Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		n.t.Fatalf("%s: init: %v", n.cfg.Name, err)
	}
	n.UnsealKey = resp.Keys[0]
	n.RootToken = resp.RootToken
	n.Client = n.NewClient(n.RootToken)
}

// Unseal submits the unseal key and waits until the node reports unsealed.
func (n *Node) Unseal() {
	n.t.Helper()
	c := n.NewClient("")
	n.waitFor("unseal", 60*time.Second, func() (bool, error) {
		st, err := c.Sys().Unseal(n.UnsealKey)
		if err != nil {
			return false, err
		}
		return !st.Sealed, nil
	})
}

// WaitActive waits until the node is the active node and serves requests.
func (n *Node) WaitActive() {
	n.t.Helper()
	n.waitFor("active", 60*time.Second, func() (bool, error) {
		ok, err := n.IsActive()
		return ok, err
	})
}

// IsActive reports whether the node is unsealed, active and answers an authenticated request.
func (n *Node) IsActive() (bool, error) {
	if !n.Running() {
		return false, errors.New("not running")
	}
	h, err := n.NewClient("").Sys().Health()
	if err != nil {
		return false, err
	}
	if !h.Initialized || h.Sealed || h.Standby {
		return false, nil
	}
	// Token store and mounts are ready once a root-token lookup succeeds.
	if _, err := n.Client.Auth().Token().LookupSelf(); err != nil {
		return false, err
	}
	return true, nil
}

// StartInitUnseal starts a fresh single server: start, init (1 key share), unseal, wait active.
func StartInitUnseal(t testing.TB, storage storageKind) *Node {
	t.Helper()
	n := newNode(t, testDir(t), nodeConfig{Name: "vault", Storage: storage})
	n.Start()
	n.Init()
	n.Unseal()
	n.WaitActive()
	return n
}

// ---------------------------------------------------------------------------------------
// Plugin registration

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

// InstallPlugin copies bin into the plugin directory of every node under the file name
// command (the catalog's -command) and returns its SHA-256.
func InstallPlugin(t testing.TB, bin, command string, nodes ...*Node) string {
	t.Helper()
	for _, n := range nodes {
		copyFile(t, bin, filepath.Join(n.PluginDir, command), 0o755)
	}
	return fileSHA256(t, bin)
}

// RegisterPlugin does what `vault plugin register -sha256=SHA -command=CMD -version=V secret NAME` does.
func RegisterPlugin(t testing.TB, c *api.Client, command, sha, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Sys().RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name:    pluginName,
		Type:    api.PluginTypeSecrets,
		Command: command,
		SHA256:  sha,
		Version: version,
	})
	if err != nil {
		t.Fatalf("register %s %s: %v", pluginName, version, err)
	}
}

// SetupPlugin installs this tree's plugin binary on every node, registers it through the
// first node and enables it at mount (with -plugin-version=pluginVersion).
func SetupPlugin(t testing.TB, mount string, nodes ...*Node) {
	t.Helper()
	sha := InstallPlugin(t, pluginBin(t), pluginName, nodes...)
	RegisterPlugin(t, nodes[0].Client, pluginName, sha, pluginVersion)
	EnablePlugin(t, nodes[0].Client, mount, pluginVersion)
}

func EnablePlugin(t testing.TB, c *api.Client, mount, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := c.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: pluginName, Config: api.MountConfigInput{PluginVersion: version}})
	if err != nil {
		t.Fatalf("enable %s at %s/: %v", pluginName, mount, err)
	}
}

// ---------------------------------------------------------------------------------------
// Raft cluster

// Cluster is a set of raft nodes sharing one unseal key and root token.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// StartRaftCluster starts n raft nodes on loopback (distinct API and cluster ports, each with
// retry_join towards all nodes), initialises the first, unseals all with its key, and waits
// until all n are voters and one is active.
func StartRaftCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	base := testDir(t)
	c := &Cluster{t: t}
	for i := range n {
		dir := filepath.Join(base, fmt.Sprintf("node%d", i))
		c.Nodes = append(c.Nodes, newNode(t, dir, nodeConfig{Name: fmt.Sprintf("node%d", i), Storage: storageRaft}))
	}
	// Rewrite configs now that every API address is known.
	var addrs []string
	for _, nd := range c.Nodes {
		addrs = append(addrs, nd.Addr)
	}
	for _, nd := range c.Nodes {
		nd.cfg.RetryJoin = addrs
		if err := os.WriteFile(nd.configPath(), []byte(nd.configHCL()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first := c.Nodes[0]
	first.Start()
	first.Init()
	first.Unseal()
	first.WaitActive()
	// Autopilot promotes new servers to voters after server_stabilization_time (10 s by
	// default); shorten it so that losing a node never leaves the cluster without quorum.
	if _, err := first.Client.Logical().Write("sys/storage/raft/autopilot/configuration", map[string]any{
		"server_stabilization_time": "1s",
		"cleanup_dead_servers":      false,
	}); err != nil {
		t.Fatalf("autopilot config: %v", err)
	}
	for _, nd := range c.Nodes[1:] {
		nd.UnsealKey, nd.RootToken = first.UnsealKey, first.RootToken
		nd.Client = nd.NewClient(nd.RootToken)
		nd.Start()
	}
	for _, nd := range c.Nodes[1:] {
		nd.Unseal()
	}
	c.WaitVoters(n)
	return c
}

// Active returns the node that currently reports itself active (waiting up to 60 s).
func (c *Cluster) Active() *Node {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, nd := range c.Nodes {
			if ok, _ := nd.IsActive(); ok {
				return nd
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("no active node within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Standbys returns the running nodes other than active.
func (c *Cluster) Standbys(active *Node) []*Node {
	var out []*Node
	for _, nd := range c.Nodes {
		if nd != active && nd.Running() {
			out = append(out, nd)
		}
	}
	return out
}

// WaitVoters waits until the raft configuration lists want voters and every running node is
// unsealed and knows the leader.
func (c *Cluster) WaitVoters(want int) {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		if ok, why := c.voters(want); ok {
			return
		} else {
			last = why
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("raft cluster not ready within 90s: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Cluster) voters(want int) (bool, string) {
	var active *Node
	for _, nd := range c.Nodes {
		if ok, _ := nd.IsActive(); ok {
			active = nd
		}
	}
	if active == nil {
		return false, "no active node"
	}
	sec, err := active.Client.Logical().Read("sys/storage/raft/configuration")
	if err != nil || sec == nil {
		return false, fmt.Sprintf("raft configuration: %v", err)
	}
	cfg, _ := sec.Data["config"].(map[string]any)
	servers, _ := cfg["servers"].([]any)
	voters := 0
	for _, s := range servers {
		if m, _ := s.(map[string]any); m != nil && m["voter"] == true {
			voters++
		}
	}
	if voters != want {
		return false, fmt.Sprintf("%d voters of %d servers", voters, len(servers))
	}
	for _, nd := range c.Nodes {
		if !nd.Running() {
			continue
		}
		l, err := nd.Client.Sys().Leader()
		if err != nil {
			return false, fmt.Sprintf("%s leader: %v", nd.cfg.Name, err)
		}
		if l.LeaderAddress == "" {
			return false, nd.cfg.Name + " has no leader yet"
		}
	}
	return true, ""
}

// ---------------------------------------------------------------------------------------
// Small helpers

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// respErr returns the *api.ResponseError inside err, failing the test when there is none.
func respErr(t testing.TB, err error) *api.ResponseError {
	t.Helper()
	var re *api.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want an HTTP error response, got %v", err)
	}
	return re
}

func wantStatus(t testing.TB, err error, status int, what string) *api.ResponseError {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: want HTTP %d, got success", what, status)
	}
	re := respErr(t, err)
	if re.StatusCode != status {
		t.Fatalf("%s: want HTTP %d, got %d: %v", what, status, re.StatusCode, re.Errors)
	}
	return re
}

// grepSecrets returns, for each secret that occurs in the file, a line-numbered excerpt.
func grepSecrets(t testing.TB, path string, secrets map[string]string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var found []string
	for name, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("secret %s too short to search for: %q", name, s)
		}
		idx := bytes.Index(data, []byte(s))
		if idx < 0 {
			continue
		}
		line := 1 + bytes.Count(data[:idx], []byte("\n"))
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for i := 1; sc.Scan(); i++ {
			if i == line {
				excerpt := strings.ReplaceAll(sc.Text(), s, "<"+name+">")
				if len(excerpt) > 400 {
					excerpt = excerpt[:400] + "..."
				}
				found = append(found, fmt.Sprintf("%s:%d contains %s: %s", filepath.Base(path), line, name, excerpt))
				break
			}
		}
	}
	return found
}
