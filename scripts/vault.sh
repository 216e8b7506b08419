#!/usr/bin/env bash
# Build bin/vault once from the tools/ module (Vault version pinned in tools/go.mod) and reuse it.
# Skips the build when bin/vault already reports the pinned version. Prints the binary path.
#
#   scripts/vault.sh            # ensure bin/vault, print its path
#   FORCE=1 scripts/vault.sh    # rebuild even if present
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/bin}
VAULT=$BIN_DIR/vault
WANT=$(awk '$1 == "github.com/hashicorp/vault" && $2 ~ /^v/ { print $2; exit }' "$ROOT/tools/go.mod")
if [[ -z $WANT ]]; then
  echo "vault.sh: cannot find the github.com/hashicorp/vault version in tools/go.mod" >&2
  exit 1
fi

have_version() {
  # `vault version` prints e.g. "Vault v1.21.0, built 2025-..." or "Vault v1.21.0 ('abc')".
  [[ -x $VAULT ]] || return 1
  local v
  v=$("$VAULT" version 2>/dev/null | awk 'NR == 1 { print $2 }') || return 1
  v=${v%,}
  [[ $v == "$WANT" ]]
}

mkdir -p "$BIN_DIR"
exec 9>"$BIN_DIR/.vault.lock"
flock 9 # one build at a time, even across parallel make/test invocations

# Someone else (e.g. a manual `go build -o bin/vault`) may be building right now: wait for it.
for _ in $(seq 1 1800); do
  pgrep -f "go build .*-o ([^ ]*/)?bin/vault( |$)" >/dev/null 2>&1 || break
  sleep 1
done

if [[ ${FORCE:-} != 1 ]] && have_version; then
  echo "$VAULT"
  exit 0
fi

echo "vault.sh: building Vault $WANT into $VAULT (several minutes on a cold cache)..." >&2
tmp=$BIN_DIR/.vault.build.$$
trap 'rm -f "$tmp"' EXIT
# -tags minimal leaves out the add-on plugins and storage backends that the
# tests and the dev stack never use (cloud auth methods, database plugins,
# consul/etcd/... storage); it halves the build (about 5 instead of 10
# minutes on two cold cores). inmem and raft storage, the file audit device,
# kv and token auth are all in it.
(cd "$ROOT/tools" && go build -tags minimal -o "$tmp" github.com/hashicorp/vault)
mv -f "$tmp" "$VAULT"
trap - EXIT
if ! have_version; then
  echo "vault.sh: built $VAULT but 'vault version' does not report $WANT:" >&2
  "$VAULT" version >&2 || true
  exit 1
fi
echo "$VAULT"
