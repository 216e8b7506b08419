#!/usr/bin/env bash
# make bench: Go benchmarks, then a side-by-side load test against a real Vault dev server.
#
# Builds what is missing (bin/vault from tools/, the plugin, the Concur simulator, the load
# generator e2e/loadtest), runs the Go benchmarks of backend/ and concur/, then starts
#   * the Concur simulator (bin/concur-sim) on a free loopback port, and
#   * `vault server -dev` on a free loopback port with a plugin directory,
# registers the plugin by SHA-256 and version, enables it at concur/, writes concur/config
# against the simulator with a fresh company request token, and runs e2e/loadtest: concur/creds
# and a KV v2 secret of similar size (secret/data/bench) read in alternating phases by
# closed-loop keep-alive connections. Everything it starts is stopped on exit.
#
# Results: $BENCH_OUT/performance-results.{json,txt} (load test) and
# $BENCH_OUT/performance-bench.txt (Go benchmarks); docs/performance.md summarises them.
#
# Environment:
#   BENCH_DURATION  measured time per target (default 60s; the RSS figure wants a minute)
#   BENCH_PHASE     length of one alternating phase (default 5s)
#   BENCH_WARMUP    unmeasured load per target first (default 5s)
#   BENCH_CONNS     concurrent connections (default 32)
#   BENCH_GO        1 (default) runs the Go benchmarks, 0 skips them
#   BENCH_BENCHTIME go test -benchtime (default 1s)
#   BENCH_OUT       output directory (default docs/)
#   BENCH_NOTE      free text recorded with the results
#   BENCH_EXTRA_PLUGIN  path to another build of the plugin, for A/B experiments: registered as
#                   vault-plugin-secrets-concur-b, enabled at concur-b/, configured the same way,
#                   and read as a third target (creds-b) in the same run
#   VERSION         plugin version (default v0.2.0)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PLUGIN_NAME=vault-plugin-secrets-concur
VERSION=${VERSION:-v0.2.0}
DURATION=${BENCH_DURATION:-60s}
PHASE=${BENCH_PHASE:-5s}
WARMUP=${BENCH_WARMUP:-5s}
CONNS=${BENCH_CONNS:-32}
OUT=${BENCH_OUT:-$ROOT/docs}
ROOT_TOKEN=bench-root
EXTRA=${BENCH_EXTRA_PLUGIN:-}

SCRIPT=bench.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

for tool in curl sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# --- build what is missing ---------------------------------------------------------------
say "Vault (bin/vault, built once from tools/)"
VAULT=$(scripts/vault.sh)
say "plugin $VERSION and simulator (make build sim)"
make --no-print-directory build sim VERSION="$VERSION" >&2
PLUGIN=$ROOT/bin/$PLUGIN_NAME
SIM=$ROOT/bin/concur-sim
[[ -x $PLUGIN && -x $SIM ]] || die "plugin or simulator missing after make build sim"
[[ -z $EXTRA || -x $EXTRA ]] || die "BENCH_EXTRA_PLUGIN=$EXTRA is not an executable"

mkdir -p .dev
# shellcheck disable=SC2012 # run directories are named by this script
ls -1dt .dev/bench-* 2>/dev/null | tail -n +4 | xargs -r rm -rf || true
RUN=$ROOT/.dev/bench-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$RUN/plugins"
say "load generator (e2e/loadtest)"
(cd e2e && CGO_ENABLED=0 go build -o "$RUN/loadtest" ./loadtest)

# --- Go benchmarks -------------------------------------------------------------------------
if [[ ${BENCH_GO:-1} == 1 ]]; then
  say "Go benchmarks (backend, concur) -> ${OUT#"$ROOT"/}/performance-bench.txt"
  {
    echo "# go test -run '^\$' -bench . -benchmem -benchtime ${BENCH_BENCHTIME:-1s} ./backend ./concur"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version)"
    go test -run '^$' -bench . -benchmem -benchtime "${BENCH_BENCHTIME:-1s}" ./backend ./concur
  } 2>&1 | tee "$RUN/bench.txt" >&2 || true
  if grep -q -- '--- FAIL\|^FAIL' "$RUN/bench.txt" || ! grep -q '^ok' "$RUN/bench.txt"; then
    die "Go benchmarks failed (see $RUN/bench.txt)"
  fi
  cp "$RUN/bench.txt" "$OUT/performance-bench.txt"
fi

STOP_MESSAGE="stopping the simulator and Vault (logs in ${RUN#"$ROOT"/})"

# --- Concur simulator ------------------------------------------------------------------------
CLIENT_ID=bench-client-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
CLIENT_SECRET=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
COMPANY_UUID=$(cat /proc/sys/kernel/random/uuid)
say "Concur simulator"
set -m
"$SIM" --listen 127.0.0.1:0 --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" \
  --company-uuid "$COMPANY_UUID" --rotation rotate --request-token-uses -1 >"$RUN/sim.log" 2>&1 &
SIM_PID=$!
PGIDS+=("$SIM_PID")
set +m
wait_until 30 "the simulator" grep -q "listening on" "$RUN/sim.log"
SIM_URL=$(grep -o 'listening on [^ ]*' "$RUN/sim.log" | head -n1 | awk '{print $3}')
SIM_URL=${SIM_URL%/}
[[ $SIM_URL == http://127.0.0.1:* ]] || die "cannot read the simulator's loopback URL from $RUN/sim.log"
wait_until 30 "the simulator's admin API" curl -fsS "$SIM_URL/_sim/stats"

# --- Vault dev server ------------------------------------------------------------------------
VAULT_PORT=$(free_port)
export VAULT_ADDR=http://127.0.0.1:$VAULT_PORT VAULT_TOKEN=$ROOT_TOKEN
unset VAULT_NAMESPACE VAULT_CACERT VAULT_CAPATH VAULT_CLIENT_CERT VAULT_CLIENT_KEY
echo "plugin_directory = \"$RUN/plugins\"" >"$RUN/plugins.hcl"
cp "$PLUGIN" "$RUN/plugins/$PLUGIN_NAME"
[[ -z $EXTRA ]] || cp "$EXTRA" "$RUN/plugins/$PLUGIN_NAME-b"
say "Vault dev server on $VAULT_ADDR"
set -m
"$VAULT" server -dev -dev-root-token-id="$ROOT_TOKEN" -dev-listen-address="127.0.0.1:$VAULT_PORT" \
  -config="$RUN/plugins.hcl" -log-level=warn >"$RUN/vault.log" 2>&1 &
VAULT_PID=$!
PGIDS+=("$VAULT_PID")
set +m
wait_until 60 "Vault" "$VAULT" status

mount_concur() { # mount_concur PLUGIN-NAME MOUNT
  local name=$1 mount=$2 sha rt
  sha=$(sha256sum "$RUN/plugins/$name" | cut -d' ' -f1)
  "$VAULT" plugin register -sha256="$sha" -version="$VERSION" secret "$name" >&2
  "$VAULT" secrets enable -path="$mount" -plugin-version="$VERSION" "$name" >&2
  rt=$(curl -fsS -X POST "$SIM_URL/_sim/request-token" | json_field request_token)
  [[ -n $rt ]] || die "the simulator gave no request token"
  "$VAULT" write "$mount/config" client_id="$CLIENT_ID" client_secret="$CLIENT_SECRET" \
    company_uuid="$COMPANY_UUID" request_token="$rt" base_url="$SIM_URL" \
    allowed_hosts='http://127.0.0.1:*' >/dev/null
}
say "register, enable and configure the plugin at concur/"
mount_concur "$PLUGIN_NAME" concur
TARGETS=creds=/v1/concur/creds,kv=/v1/secret/data/bench
PLUGINS=$PLUGIN_NAME
if [[ -n $EXTRA ]]; then
  say "A/B: $EXTRA at concur-b/"
  mount_concur "$PLUGIN_NAME-b" concur-b
  TARGETS+=,creds-b=/v1/concur-b/creds
  PLUGINS+=,$PLUGIN_NAME-b
fi
MOUNTS=$("$VAULT" secrets list)
grep -q '^secret/ .*kv' <<<"$MOUNTS" || die "the dev server has no kv at secret/"

# --- the load test -----------------------------------------------------------------------------
say "load test: $DURATION per target, $CONNS connections, alternating $PHASE phases"
"$RUN/loadtest" -vault-addr "$VAULT_ADDR" -token "$ROOT_TOKEN" -sim-url "$SIM_URL" \
  -targets "$TARGETS" -plugins "$PLUGINS" -vault-pid "$VAULT_PID" -sim-pid "$SIM_PID" \
  -duration "$DURATION" -phase "$PHASE" -warmup "$WARMUP" -conns "$CONNS" -note "${BENCH_NOTE:-}" \
  -out-json "$RUN/performance-results.json" -out-text "$RUN/performance-results.txt"
cp "$RUN/performance-results.json" "$RUN/performance-results.txt" "$OUT/"
say "results in ${OUT#"$ROOT"/}/: performance-results.txt, performance-results.json$([[ ${BENCH_GO:-1} == 1 ]] && echo ', performance-bench.txt')"
