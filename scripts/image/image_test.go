package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const testVersion = "v9.8.7-imagetest"

// releaseForHost runs scripts/release.sh for this host's Linux platform into a
// temporary directory and returns it.
func releaseForHost(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skip("the image holds linux/amd64 and linux/arm64 binaries; the test runs the host's")
	}
	dist := t.TempDir()
	script := exec.CommandContext(context.Background(), "bash", filepath.Join("..", "release.sh"))
	script.Env = append(os.Environ(), "VERSION="+testVersion, "DIST="+dist, "PLATFORMS=linux/"+runtime.GOARCH)
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	return dist
}

// TestImageHoldsTheReleasedBinary builds the image from a real release, reads it back
// from both the OCI layout and the tar archive, validates them with
// go-containerregistry's validate package, extracts the binary and compares its
// SHA-256 with SHA256SUMS, then runs the extracted binary's -install mode (the
// init container's step) and checks what it installs and prints.
func TestImageHoldsTheReleasedBinary(t *testing.T) {
	dist := releaseForHost(t)
	sums, err := readSums(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	archive := filepath.Join(out, "image.tar")
	digest, err := build(dist, testVersion, filepath.Join(out, "oci"), archive)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(out, "from-archive")
	untar(t, archive, unpacked)

	binName := binaryName + "_" + testVersion + "_linux_" + runtime.GOARCH
	for _, dir := range []string{filepath.Join(out, "oci"), unpacked} {
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		outer, err := idx.IndexManifest()
		if err != nil || len(outer.Manifests) != 1 || outer.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != testVersion {
			t.Fatalf("%s/index.json: %+v, %v; want one index tagged %s", dir, outer, err, testVersion)
		}
		if outer.Manifests[0].Digest != digest {
			t.Errorf("%s holds index %s, build returned %s", dir, outer.Manifests[0].Digest, digest)
		}
		inner, err := idx.ImageIndex(digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(inner); err != nil {
			t.Fatalf("%s: validate: %v", dir, err)
		}
		img, err := inner.Image(platformDigest(t, inner, "linux", runtime.GOARCH))
		if err != nil {
			t.Fatal(err)
		}
		checkConfig(t, img)
		extracted := extractBinary(t, img)
		if got := sha256Hex(extracted); got != sums[binName] {
			t.Errorf("%s: the image's %s has SHA-256 %s, SHA256SUMS says %s", dir, binaryPath, got, sums[binName])
		}
		checkInstall(t, extracted, sums[binName])
	}
}

func platformDigest(t *testing.T, idx v1.ImageIndex, os, arch string) v1.Hash {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == os && d.Platform.Architecture == arch {
			return d.Digest
		}
	}
	t.Fatalf("no %s/%s image in the index: %+v", os, arch, m.Manifests)
	return v1.Hash{}
}

func checkConfig(t *testing.T, img v1.Image) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != binaryPath || cfg.OS != "linux" {
		t.Errorf("config: entrypoint %q, os %q; want [%s], linux", cfg.Config.Entrypoint, cfg.OS, binaryPath)
	}
}

// extractBinary reads the image's flattened file system and returns the plugin file;
// the image must hold nothing else.
func extractBinary(t *testing.T, img v1.Image) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var bin []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if "/"+strings.TrimPrefix(hdr.Name, "/") != binaryPath || hdr.Mode&0o111 == 0 {
			t.Fatalf("image holds %s (mode %o); want only an executable %s", hdr.Name, hdr.Mode, binaryPath)
		}
		if bin, err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	if bin == nil {
		t.Fatalf("no %s in the image", binaryPath)
	}
	return bin
}

func checkInstall(t *testing.T, bin []byte, wantSum string) {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "from-image")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	pluginDir := t.TempDir()
	out, err := exec.CommandContext(context.Background(), exe, "-install", pluginDir).Output()
	if err != nil {
		t.Fatalf("-install: %v", err)
	}
	if got, want := string(out), wantSum+"  "+binaryName+"\n"; got != want {
		t.Errorf("-install printed %q, want %q", got, want)
	}
	installed, err := os.ReadFile(filepath.Join(pluginDir, binaryName))
	if err != nil || sha256Hex(installed) != wantSum {
		t.Errorf("installed plugin: %v, SHA-256 %s, want %s", err, sha256Hex(installed), wantSum)
	}
}

// The same release gives the same archive, byte for byte.
func TestImageIsReproducible(t *testing.T) {
	dist := releaseForHost(t)
	var archives [2][]byte
	for i := range archives {
		out := t.TempDir()
		if _, err := build(dist, testVersion, filepath.Join(out, "oci"), filepath.Join(out, "a.tar")); err != nil {
			t.Fatal(err)
		}
		var err error
		if archives[i], err = os.ReadFile(filepath.Join(out, "a.tar")); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Error("two image builds from the same release differ")
	}
}

// A binary that does not match SHA256SUMS never goes into an image.
func TestImageRefusesABinaryThatDoesNotMatchSHA256SUMS(t *testing.T) {
	dist := t.TempDir()
	name := binaryName + "_" + testVersion + "_linux_amd64"
	if err := os.WriteFile(filepath.Join(dist, name), []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	sums := sha256Hex([]byte("original")) + "  " + name + "\n"
	if err := os.WriteFile(filepath.Join(dist, "SHA256SUMS"), []byte(sums), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	_, err := build(dist, testVersion, filepath.Join(out, "oci"), filepath.Join(out, "a.tar"))
	if err == nil || !strings.Contains(err.Error(), "does not match SHA256SUMS") {
		t.Errorf("error %v, want a refusal naming SHA256SUMS", err)
	}
	if _, err := os.Stat(filepath.Join(out, "a.tar")); !os.IsNotExist(err) {
		t.Error("an archive was written")
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			t.Fatalf("archive entry %q escapes the directory", hdr.Name)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
