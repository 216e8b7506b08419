package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReleaseArtifactForThisHost runs scripts/release.sh for the host platform
// only (the full cross-compile is `make release`, too slow for every test
// run) and checks that the binary reports the stamped version and that
// SHA256SUMS matches the files.
func TestReleaseArtifactForThisHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	for _, tool := range []string{"bash", "sha256sum", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: %v", tool, err)
		}
	}
	const version = "v9.8.7-releasetest"
	dist := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	script := exec.CommandContext(context.Background(), "bash", filepath.Join("..", "..", "scripts", "release.sh"))
	script.Env = append(os.Environ(), "VERSION="+version, "DIST="+dist, "PLATFORMS="+platform)
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}

	bin := filepath.Join(dist, "vault-plugin-secrets-concur_"+version+"_"+runtime.GOOS+"_"+runtime.GOARCH)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.CommandContext(context.Background(), bin, "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -version: %v\n%s", bin, err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "vault-plugin-secrets-concur "+version; got != want {
		t.Errorf("-version printed %q, want %q", got, want)
	}

	check := func() *exec.Cmd {
		c := exec.CommandContext(context.Background(), "sha256sum", "--check", "--strict", "SHA256SUMS")
		c.Dir = dist
		return c
	}
	if out, err := check().CombinedOutput(); err != nil {
		t.Fatalf("sha256sum --check: %v\n%s", err, out)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	sbom := filepath.Base(bin) + ".sbom.cdx.json"
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "  "+filepath.Base(bin)) || !strings.HasSuffix(lines[1], "  "+sbom) {
		t.Errorf("SHA256SUMS = %q, want lines for %s and %s", sums, filepath.Base(bin), sbom)
	}
	checkSBOM(t, filepath.Join(dist, sbom), version, strings.Fields(lines[0])[0])

	// A binary changed after the sums were written must fail the check.
	if err := os.WriteFile(bin, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := check().CombinedOutput(); err == nil || !strings.Contains(string(out), "FAILED") {
		t.Errorf("sha256sum --check accepted a changed binary:\n%s", out)
	}
}

// checkSBOM: the SBOM is CycloneDX JSON describing this binary (its version and
// SHA-256) and its modules, with no serial number or timestamp (they would make
// two builds differ).
func checkSBOM(t *testing.T, path, version, binSum string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat    string `json:"bomFormat"`
		SerialNumber string `json:"serialNumber"`
		Metadata     struct {
			Timestamp string `json:"timestamp"`
			Component struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"component"`
			Properties []struct{ Name, Value string } `json:"properties"`
		} `json:"metadata"`
		Components []struct{ Name, Version string } `json:"components"`
	}
	if err := json.Unmarshal(raw, &bom); err != nil {
		t.Fatalf("SBOM: %v", err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SerialNumber != "" || bom.Metadata.Timestamp != "" {
		t.Errorf("SBOM format %q, serial %q, timestamp %q; want CycloneDX without serial and timestamp",
			bom.BOMFormat, bom.SerialNumber, bom.Metadata.Timestamp)
	}
	if c := bom.Metadata.Component; c.Name != "github.com/concur-vault/vault-plugin-secrets-concur" || c.Version != version {
		t.Errorf("SBOM describes %s %s", c.Name, c.Version)
	}
	hashed := false
	for _, p := range bom.Metadata.Properties {
		hashed = hashed || (p.Name == "cdx:gomod:binary:hash:SHA-256" && p.Value == binSum)
	}
	if !hashed {
		t.Errorf("SBOM does not record the binary's SHA-256 %s", binSum)
	}
	found := map[string]bool{}
	for _, c := range bom.Components {
		found[c.Name] = true
	}
	for _, dep := range []string{"github.com/hashicorp/vault/sdk", "github.com/hashicorp/go-plugin", "std"} {
		if !found[dep] {
			t.Errorf("SBOM lists no %s among %d components", dep, len(bom.Components))
		}
	}
}

func TestReleaseRefusesANonCanonicalVersion(t *testing.T) {
	for _, v := range []string{"", "0.2.0", "v0.2", "v0.2.0 rm"} {
		script := exec.CommandContext(context.Background(), "bash", filepath.Join("..", "..", "scripts", "release.sh"))
		script.Env = append(os.Environ(), "VERSION="+v, "DIST="+t.TempDir(), "PLATFORMS=none/none")
		out, err := script.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "VERSION must be") {
			t.Errorf("VERSION=%q: %v\n%s; want a refusal naming VERSION", v, err, out)
		}
	}
}
