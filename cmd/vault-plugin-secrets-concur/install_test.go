package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// installFile replaces an older plugin file in place and leaves no temporary file behind.
func TestInstallFileReplacesThePluginAndReturnsItsHash(t *testing.T) {
	src := filepath.Join(t.TempDir(), "exe")
	content := []byte("\x7fELF new plugin build")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, pluginName), []byte("old build"), 0o755); err != nil {
		t.Fatal(err)
	}

	sum, err := installFile(src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256Hex(content); sum != want {
		t.Errorf("hash %s, want %s", sum, want)
	}
	got, err := os.ReadFile(filepath.Join(dir, pluginName))
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("installed file = %q, %v; want the source's bytes", got, err)
	}
	info, err := os.Stat(filepath.Join(dir, pluginName))
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("installed file mode %v, %v; want 0755", info.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("plugin directory holds %d entries, want only %s", len(entries), pluginName)
	}
}

func TestInstallFileRefusesAMissingDirectory(t *testing.T) {
	src := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := installFile(src, missing); err == nil || !strings.Contains(err.Error(), "plugin directory") {
		t.Errorf("error %v, want one naming the plugin directory", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("%s was created", missing)
	}
}

// The built binary's -install mode: what the image's init container runs.
func TestInstallModeCopiesTheBinaryAndPrintsItsSHA256(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	bin := filepath.Join(t.TempDir(), "plugin")
	build := exec.CommandContext(context.Background(), "go", "build", "-trimpath",
		"-ldflags", "-X github.com/concur-vault/vault-plugin-secrets-concur/backend.Version=v9.9.9-installtest", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	built, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), bin, "-install", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-install: %v\n%s", err, stderr.String())
	}
	if got, want := stdout.String(), sha256Hex(built)+"  "+pluginName+"\n"; got != want {
		t.Errorf("-install printed %q, want %q", got, want)
	}
	installed := filepath.Join(dir, pluginName)
	out, err := exec.CommandContext(context.Background(), installed, "-version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != pluginName+" v9.9.9-installtest" {
		t.Errorf("installed copy -version: %q, %v", out, err)
	}

	// A missing directory: a clear error and exit status 1, nothing on stdout.
	stdout.Reset()
	stderr.Reset()
	cmd = exec.CommandContext(context.Background(), bin, "-install", filepath.Join(dir, "missing"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil || stdout.Len() != 0 || !strings.Contains(stderr.String(), "plugin directory") {
		t.Errorf("-install into a missing directory: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}

	// Without a directory it is not the install mode: the binary starts as a plugin, which
	// go-plugin refuses outside Vault (no handshake cookie); nothing is installed.
	empty := t.TempDir()
	cmd = exec.CommandContext(context.Background(), bin, "-install")
	cmd.Dir = empty
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "This binary is a plugin") {
		t.Errorf("-install without a directory: %v\n%s; want the plugin's refusal to run outside Vault", err, out)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("-install without a directory wrote %d files", len(entries))
	}
}
