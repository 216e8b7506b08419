#!/usr/bin/env bash
# Reproducibility check: builds the release twice from the same source in two
# directories with different paths, the second with an empty Go build cache (as
# on a fresh machine), and compares every artifact and SHA256SUMS byte for byte.
#
#   VERSION=v0.3.0 scripts/release-check.sh                  host platform (make release-check, CI)
#   VERSION=v0.3.0 PLATFORMS="linux/amd64 ..." ...           other platforms
#   VERSION=v0.3.0 AGAINST=dist scripts/release-check.sh     compare one fresh build with dist/
#                                                            (make release)
#
# The source is the working tree's tracked and untracked, not ignored files
# (uncommitted changes included), so the check needs no commit to run.
set -euo pipefail
SCRIPT=release-check.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

VERSION="${VERSION:-}"
PLATFORMS="${PLATFORMS:-$(go env GOOS)/$(go env GOARCH)}"
AGAINST="${AGAINST:-}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/release-check.XXXXXX")
# The module cache is read-only; make it removable.
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

copy_source() {
  mkdir -p "$1"
  # --ignore-failed-read: a tracked file deleted in the working tree is left out.
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard --deduplicate |
    tar --null -T - --ignore-failed-read -c 2>/dev/null) | tar -x -C "$1"
}

# The SBOM generator is built once, with -trimpath, and shared by both builds:
# it is not what is checked, but its hash is recorded in every SBOM.
say "build cyclonedx-gomod (tools/sbom)"
(cd "$ROOT/tools/sbom" && go build -trimpath -buildvcs=false -o "$WORK/cyclonedx-gomod" \
  github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod)

build() { # build SRC DIST [GOCACHE]
  VERSION="$VERSION" PLATFORMS="$PLATFORMS" DIST="$2" CYCLONEDX_GOMOD="$WORK/cyclonedx-gomod" \
    GOCACHE="${3:-$(go env GOCACHE)}" bash "$1/scripts/release.sh"
}

if [[ -n "$AGAINST" ]]; then
  first="$(cd "$AGAINST" && pwd)"
else
  copy_source "$WORK/a/src"
  say "first build in $WORK/a/src"
  build "$WORK/a/src" "$WORK/a/dist"
  first="$WORK/a/dist"
fi
copy_source "$WORK/b/elsewhere/source-two"
say "second build in $WORK/b/elsewhere/source-two, empty build cache"
build "$WORK/b/elsewhere/source-two" "$WORK/b/dist" "$WORK/b/gocache"
second="$WORK/b/dist"

diff -u "$first/SHA256SUMS" "$second/SHA256SUMS" || die "SHA256SUMS differ between the two builds"
(cd "$first" && find . -type f -print0 | sort -z) | while IFS= read -r -d '' f; do
  cmp -- "$first/$f" "$second/$f" || die "$f differs between the two builds"
done
[[ "$(cd "$first" && find . -type f | sort)" == "$(cd "$second" && find . -type f | sort)" ]] ||
  die "the two builds made different sets of files"
say "reproducible: both builds byte-identical ($(wc -l <"$first/SHA256SUMS") files in SHA256SUMS)"
