package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// pluginName is the file name the plugin gets in Vault's plugin directory: the
// name it is registered under, so that no `-command` is needed.
const pluginName = "vault-plugin-secrets-concur"

// installSelf copies the running executable into dir as pluginName and writes
// its SHA-256 to w in sha256sum format ("<hex>  vault-plugin-secrets-concur").
// It is what an init container runs from the image, which has no shell:
// `vault-plugin-secrets-concur -install /usr/local/libexec/vault`.
func installSelf(dir string, w io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable: %w", err)
	}
	sum, err := installFile(exe, dir)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s  %s\n", sum, pluginName)
	return err
}

// installFile copies src to dir/pluginName through a temporary file in dir and a
// rename, so a Vault running the previous file never sees a half-written one,
// then hashes the installed file again and returns its SHA-256 (hex) if it
// matches what was read from src.
func installFile(src, dir string) (string, error) {
	info, err := os.Stat(dir) //nolint:gosec // G703: the directory the operator named on the command line
	if err != nil {
		return "", fmt.Errorf("plugin directory: %w", err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("plugin directory %s is not a directory", dir)
	}
	in, err := os.Open(src) //nolint:gosec // src is this process's own executable
	if err != nil {
		return "", fmt.Errorf("reading this executable: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(dir, "."+pluginName+"-*")
	if err != nil {
		return "", fmt.Errorf("plugin directory: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	read := sha256.New()
	_, err = io.Copy(tmp, io.TeeReader(in, read))
	err = errors.Join(err, tmp.Chmod(0o755), tmp.Sync(), tmp.Close())
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	dst := filepath.Join(dir, pluginName)
	if err := os.Rename(tmp.Name(), dst); err != nil { //nolint:gosec // G703: dst is in the operator's directory
		return "", fmt.Errorf("installing %s: %w", dst, err)
	}
	written, err := fileSHA256(dst)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(written, read.Sum(nil)) {
		return "", fmt.Errorf("%s differs from this executable after the copy", dst)
	}
	return hex.EncodeToString(written), nil
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the file installFile just wrote
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	return h.Sum(nil), nil
}
