#!/usr/bin/env bash
# Release artifacts: static plugin binaries for each platform, stamped with
# VERSION, plus SHA256SUMS (sha256sum format), checked before the script ends.
#
#   VERSION=v0.2.0 scripts/release.sh             (make release VERSION=v0.2.0)
#   PLATFORMS="linux/amd64" DIST=/tmp/d ...        a subset, elsewhere (tests)
#
# Binaries are named vault-plugin-secrets-concur_<version>_<os>_<arch>[.exe].
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
  die "VERSION must be v + semver (e.g. v0.2.0), got '${VERSION}'"

rm -rf "$DIST"
mkdir -p "$DIST"
cd "$ROOT"
for platform in $PLATFORMS; do
  os="${platform%/*}" arch="${platform#*/}"
  out="$DIST/${NAME}_${VERSION}_${os}_${arch}"
  [[ "$os" == windows ]] && out+=.exe
  say "build $os/$arch"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath \
    -ldflags "-s -w -X $MODULE/backend.Version=$VERSION" -o "$out" "./cmd/$NAME"
done
cd "$DIST"
sha256sum -- "${NAME}_"* >SHA256SUMS
sha256sum --check --quiet SHA256SUMS
say "artifacts in $DIST:"
cat SHA256SUMS >&2
