package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// readmeBlock returns the README's sh block that contains marker.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	for _, b := range fileBlocks(t, filepath.Join(repoRoot, "README.md"), "sh") {
		if strings.Contains(b.text, marker) {
			return b.text
		}
	}
	t.Fatalf("README.md has no sh block with %q", marker)
	return ""
}

var placeholder = regexp.MustCompile(`<[a-z][a-z _-]*>`)

// runREADME runs a README block through sh, its <placeholders> replaced as given, with
// the vault CLI of the tests against node n; it fails on a placeholder the test does not
// fill (the README grew one) and returns stdout.
// tokenValues are the values of the token fields in the vault CLI's table output, kept out of test logs.
var tokenValues = regexp.MustCompile(`(?m)^((?:access|refresh)_token\s+)\S+`)

func runREADME(t *testing.T, n *Node, block string, fill map[string]string, secrets map[string]string) string {
	t.Helper()
	for k, v := range fill {
		block = strings.ReplaceAll(block, k, v)
	}
	if p := placeholder.FindString(block); p != "" {
		t.Fatalf("README block has a placeholder the test does not fill: %s\n%s", p, block)
	}
	cmd := exec.CommandContext(ctxT(t, 2*time.Minute), "sh", "-ec", block)
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+n.Addr, "VAULT_TOKEN="+n.RootToken,
		"PATH="+filepath.Dir(vaultBin(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	mustNotContain(t, "README command output", stdout.String()+stderr.String(), secrets)
	if err != nil {
		t.Fatalf("README block failed: %v\n%s\n%s", err, block, stderr.String())
	}
	return stdout.String()
}

// TestREADMEQuickStartsRunAsWritten runs the README's quick-start and profile commands,
// as written, against a real Vault with the engine and the simulator (what make dev
// starts): one company from a request token, a partner's app and company, the roster.
func TestREADMEQuickStartsRunAsWritten(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Users: 3})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	c := n.Client
	// The operator's earlier settings, as in make dev: the simulator's loopback hosts.
	if _, err := c.Logical().Write(mountPath+"/config", map[string]any{"client_id": "placeholder", "client_secret": "placeholder",
		"allowed_hosts": "http://127.0.0.1:*", "base_url": s.URL}); err != nil {
		t.Fatalf("pre-configure allowed_hosts: %v", err)
	}
	secrets := map[string]string{"client secret": s.ClientSecret}

	// Quick start: one company.
	rt := s.NewRequestToken(s.ClientID, s.Company)
	secrets["request token"] = rt
	runREADME(t, n, readmeBlock(t, `vault write concur/config \`), map[string]string{
		"<app id>": s.ClientID, "<app secret>": s.ClientSecret, "<company uuid>": s.Company, "<company request token>": rt,
	}, secrets)
	if cfg := readConfig(t, c, mountPath); cfg["status"] != "ok" || cfg["company_uuid"] != s.Company {
		t.Fatalf("config after the one-company quick start: %v", cfg)
	}
	if accessToken(readCreds(t, c, mountPath, 0)) == "" {
		t.Fatal("no creds after the one-company quick start")
	}

	// Quick start: a partner with many companies.
	other := s.NewCompany("")
	rt2 := s.NewRequestToken(s.ClientID, other)
	secrets["second request token"] = rt2
	out := runREADME(t, n, readmeBlock(t, "vault write concur/companies/<company uuid>"), map[string]string{
		"<app id>": s.ClientID, "<app secret>": s.ClientSecret, "<company uuid>": other, "<company request token>": rt2,
	}, secrets)
	if !strings.Contains(out, "access_token") || !strings.Contains(out, other) {
		t.Errorf("partner quick start printed no token or no company list:\n%s", tokenValues.ReplaceAllString(out, "$1<redacted>"))
	}
	if cfg := readConfig(t, c, mountPath); cfg["status"] != "ok" {
		t.Errorf("the app-alone write of the partner quick start changed the default company: %v", cfg)
	}

	// The roster, first page (the block's second line needs the first one's cursor).
	block := strings.SplitN(readmeBlock(t, "concur/profile count=1000"), "\n", 2)[0]
	var page struct {
		Data struct {
			Users      []map[string]any `json:"users"`
			NextCursor *string          `json:"next_cursor"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(runREADME(t, n, block, nil, secrets)), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data.Users) != len(s.Users(s.Company)) || page.Data.NextCursor == nil {
		t.Errorf("roster page: %d users and next_cursor %v, want %d users and a next_cursor", len(page.Data.Users),
			page.Data.NextCursor, len(s.Users(s.Company)))
	}
}

// TestREADMEInstallRegistersTheRelease runs the README's install-and-register block as
// written against a release built by scripts/release.sh (the host's linux/amd64 binary,
// the block's VERSION) in its own directory, with Vault's plugin directory for
// /etc/vault/plugins: the checksum check, install, -version, register by SHA-256 and
// version, enable.
func TestREADMEInstallRegistersTheRelease(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the README's install block names the linux_amd64 binary")
	}
	block := readmeBlock(t, "vault plugin register -sha256")
	m := regexp.MustCompile(`(?m)^VERSION=(v\S+)$`).FindStringSubmatch(block)
	if m == nil || m[1] != pluginVersion {
		t.Fatalf("README install block sets VERSION %v, want this tree's version %s", m, pluginVersion)
	}
	dist := t.TempDir()
	script := exec.CommandContext(ctxT(t, 5*time.Minute), "bash", filepath.Join(repoRoot, "scripts", "release.sh"))
	script.Env = append(os.Environ(), "VERSION="+pluginVersion, "DIST="+dist, "PLATFORMS=linux/amd64")
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	n := StartInitUnseal(t, storageInmem)
	block = "cd '" + dist + "'\n" + strings.ReplaceAll(block, "/etc/vault/plugins", n.PluginDir)
	runREADME(t, n, block, nil, nil)

	binName := pluginName + "_" + pluginVersion + "_linux_amd64"
	var wantSHA string
	for _, line := range strings.Split(string(sums), "\n") {
		if sum, name, ok := strings.Cut(line, "  "); ok && name == binName {
			wantSHA = sum
		}
	}
	plugin, err := n.Client.Sys().GetPluginWithContext(ctxT(t, time.Minute), &api.GetPluginInput{
		Name: pluginName, Type: api.PluginTypeSecrets, Version: pluginVersion})
	if err != nil || plugin.SHA256 != wantSHA {
		t.Fatalf("registered plugin: %+v, %v; want SHA-256 %s from SHA256SUMS", plugin, err, wantSHA)
	}
	mounts, err := n.Client.Sys().ListMountsWithContext(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if mt := mounts[mountPath+"/"]; mt == nil || mt.Type != pluginName || mt.PluginVersion != pluginVersion {
		t.Fatalf("mount %s/: %+v; want %s at %s", mountPath, mt, pluginName, pluginVersion)
	}
}
