#!/usr/bin/env bash
# Release artifacts: static plugin binaries for each platform, stamped with
# VERSION, a CycloneDX SBOM (JSON) per binary, and SHA256SUMS over all of them
# (sha256sum format), checked before the script ends.
#
#   VERSION=v0.3.0 scripts/release.sh             (make release VERSION=v0.3.0)
#   PLATFORMS="linux/amd64" DIST=/tmp/d ...        a subset, elsewhere (tests)
#   CYCLONEDX_GOMOD=/path/to/cyclonedx-gomod       a prebuilt SBOM tool (scripts/release-check.sh)
#
# Files: vault-plugin-secrets-concur_<version>_<os>_<arch>[.exe] and, next to
# each, <that name>.sbom.cdx.json.
#
# Reproducible: the same commit gives byte-identical files wherever it is built.
# The Go toolchain is the one go.mod's `toolchain` line names (GOTOOLCHAIN is set
# to it, so a machine with another Go fetches that one from the module proxy);
# -trimpath drops file system paths, -buildid= the build id, -buildvcs=false the
# VCS stamp (the version is the only thing stamped); cgo is off and the
# architecture levels (GOAMD64, GOARM64) are fixed. The SBOM is made by
# cyclonedx-gomod (pinned in tools/sbom, built with -trimpath) from the binary's
# own build information, without serial number or timestamp; it records the
# generator's hash, so SBOMs compare equal between builds on the same host
# platform (the binaries on any). scripts/release-check.sh builds twice and compares.
set -euo pipefail
SCRIPT=release.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

NAME=vault-plugin-secrets-concur
MODULE=github.com/concur-vault/vault-plugin-secrets-concur
VERSION="${VERSION:-}"
DIST="${DIST:-$ROOT/dist}"
PLATFORMS="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}"

# Vault compares the registered version with the one the plugin reports, and
# wants it canonical: "v" + semver.
[[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]] ||
  die "VERSION must be v + semver (e.g. v0.3.0), got '${VERSION}'"

cd "$ROOT"
# go.mod's toolchain line, or its go line when that names an exact release (go mod tidy drops a
# toolchain line that repeats the go line).
TOOLCHAIN=$(awk '$1 == "toolchain" { t = $2 } $1 == "go" { g = "go" $2 } END { print (t != "" ? t : g) }' go.mod)
[[ "$TOOLCHAIN" =~ ^go[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "go.mod pins no exact Go release (toolchain goX.Y.Z), got '$TOOLCHAIN'"
export GOTOOLCHAIN="$TOOLCHAIN" CGO_ENABLED=0 GOFLAGS=-mod=readonly GOAMD64=v1 GOARM64=v8.0 GOEXPERIMENT=
[[ "$(go env GOVERSION)" == "$TOOLCHAIN" ]] || die "go runs $(go env GOVERSION), go.mod pins $TOOLCHAIN"

rm -rf "$DIST"
mkdir -p "$DIST"
SBOM_TOOL="${CYCLONEDX_GOMOD:-}"
if [[ -z "$SBOM_TOOL" ]]; then
  SBOM_TOOL="$DIST/.cyclonedx-gomod"
  (cd tools/sbom && go build -trimpath -buildvcs=false -o "$SBOM_TOOL" github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod)
fi

for platform in $PLATFORMS; do
  os="${platform%/*}" arch="${platform#*/}"
  out="$DIST/${NAME}_${VERSION}_${os}_${arch}"
  [[ "$os" == windows ]] && out+=.exe
  say "build $os/$arch ($TOOLCHAIN)"
  GOOS="$os" GOARCH="$arch" go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X $MODULE/backend.Version=$VERSION" -o "$out" "./cmd/$NAME"
  "$SBOM_TOOL" bin -json -std -noserial -notimestamp -version "$VERSION" -output "$out.sbom.cdx.json" "$out" 2>/dev/null ||
    die "SBOM of $out failed"
done
rm -f "$DIST/.cyclonedx-gomod"
cd "$DIST"
sha256sum -- "${NAME}_"* >SHA256SUMS
sha256sum --check --quiet SHA256SUMS
say "artifacts in $DIST ($TOOLCHAIN):"
cat SHA256SUMS >&2
