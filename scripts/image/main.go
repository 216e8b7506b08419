// Command image builds the plugin's OCI image from release binaries, without a
// container daemon (go-containerregistry): one image per Linux platform found in
// the release directory, each a single layer holding the static binary at
// /vault-plugin-secrets-concur (its entrypoint), gathered in an image index. It
// writes an OCI image layout directory and the same layout as a tar archive
// (the `oci-archive:` format of skopeo and podman).
//
//	go run . -dist ../../dist -version v0.3.0      (make image)
//
// Every binary is checked against the release's SHA256SUMS before it goes in.
// The image is reproducible: fixed timestamps (the Unix epoch), owner root,
// files in a fixed order, so the same binaries give the same digests.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	dist := flag.String("dist", "dist", "release directory: binaries and SHA256SUMS (scripts/release.sh)")
	version := flag.String("version", "", "the release's version, v + semver")
	layoutDir := flag.String("layout", "", "OCI layout directory to write (default <dist>/oci)")
	archive := flag.String("archive", "", "OCI layout tar archive to write (default <dist>/vault-plugin-secrets-concur_<version>_oci.tar)")
	flag.Parse()
	if *layoutDir == "" {
		*layoutDir = filepath.Join(*dist, "oci")
	}
	if *archive == "" {
		*archive = filepath.Join(*dist, binaryName+"_"+*version+"_oci.tar")
	}
	digest, err := build(*dist, *version, *layoutDir, *archive)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s\n%s\nindex %s\n", *layoutDir, *archive, digest)
}
