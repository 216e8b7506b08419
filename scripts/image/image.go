package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	binaryName = "vault-plugin-secrets-concur"
	// BinaryPath is where the image holds the plugin, and its entrypoint.
	binaryPath = "/" + binaryName
)

// platforms are the image's platforms, in index order; those without a binary in
// the release directory are left out.
var platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// epoch is every timestamp in the image, so that equal binaries give equal digests.
var epoch = time.Unix(0, 0).UTC()

// build writes the image index of the release in dist to layoutDir and archive and
// returns the index digest.
func build(dist, version, layoutDir, archive string) (v1.Hash, error) {
	if !versionRE.MatchString(version) {
		return v1.Hash{}, fmt.Errorf("-version must be v + semver, got %q", version)
	}
	sums, err := readSums(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		return v1.Hash{}, err
	}
	idx, err := buildIndex(dist, version, sums)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.RemoveAll(layoutDir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("OCI layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": version,
	})); err != nil {
		return v1.Hash{}, fmt.Errorf("OCI layout: %w", err)
	}
	if err := writeArchive(layoutDir, archive); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// readSums parses a sha256sum file into file name -> hex digest.
func readSums(path string) (map[string]string, error) {
	f, err := os.Open(path) //nolint:gosec // the release's own file
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("%s: malformed line %q", path, sc.Text())
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}

func buildIndex(dist, version string, sums map[string]string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.Annotations(idx, map[string]string{
		"org.opencontainers.image.title":   binaryName,
		"org.opencontainers.image.version": version,
	}).(v1.ImageIndex)
	n := 0
	for _, plat := range platforms {
		name := fmt.Sprintf("%s_%s_%s_%s", binaryName, version, plat.OS, plat.Architecture)
		want, listed := sums[name]
		if !listed {
			continue
		}
		bin, err := os.ReadFile(filepath.Join(dist, name)) //nolint:gosec // a release file listed in SHA256SUMS
		if err != nil {
			return nil, err
		}
		if got := sha256.Sum256(bin); hex.EncodeToString(got[:]) != want {
			return nil, fmt.Errorf("%s does not match SHA256SUMS", name)
		}
		img, err := buildImage(bin, plat, version)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		p := plat
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no linux/amd64 or linux/arm64 binary of %s listed in %s/SHA256SUMS", version, dist)
	}
	return idx, nil
}

// buildImage is one platform's image: the binary alone in one layer.
func buildImage(bin []byte, plat v1.Platform, version string) (v1.Image, error) {
	layerTar, err := singleFileTar(binaryName, bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "scripts/image: " + binaryPath,
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = plat.OS, plat.Architecture, v1.Time{Time: epoch}
	cfg.Config.Entrypoint = []string{binaryPath}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.version": version}
	return mutate.ConfigFile(img, cfg)
}

func singleFileTar(name string, content []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: epoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive tars the layout directory, files sorted, timestamps at the epoch.
func writeArchive(layoutDir, archive string) (err error) {
	var files []string
	if err := filepath.WalkDir(layoutDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	}); err != nil {
		return err
	}
	sort.Strings(files)
	out, err := os.Create(archive) //nolint:gosec // the path the operator asked for
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	tw := tar.NewWriter(out)
	for _, path := range files {
		if err := addFile(tw, layoutDir, path); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, root, path string) error {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return err
	}
	content, err := os.ReadFile(path) //nolint:gosec // a file of the layout just written
	if err != nil {
		return err
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Mode: 0o644,
		Size: int64(len(content)), ModTime: epoch, Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = tw.Write(content)
	return err
}
