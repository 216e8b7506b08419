#!/usr/bin/env bash
# make bench: Go benchmarks, then a side-by-side load test against a real Vault dev server.
#
# Builds what is missing (bin/vault from tools/, the plugin, the Concur simulator, the ceiling
# plugin scripts/ceiling, the load generator e2e/loadtest), runs the Go benchmarks of backend/
# and concur/, then starts
#   * the Concur simulator (bin/concur-sim) on a free loopback port, and
#   * `vault server -dev` on a free loopback port with a plugin directory,
# registers the plugin and the ceiling by SHA-256 and version, enables them at concur/ and
# ceiling/, writes concur/config against the simulator with a fresh company request token and
# concur/companies/bench with a company the simulator makes for it, and runs e2e/loadtest:
# concur/creds, ceiling/creds, concur/companies/bench/creds and a KV v2 secret of similar size
# (secret/data/bench) read in alternating phases by closed-loop keep-alive connections. Then a
# short profiling pass reads concur/creds, concur/companies/bench/creds and ceiling/creds again
# while both plugins' net/http/pprof (on loopback ports, enabled for this run only) record CPU
# and allocations. Everything it starts is stopped on exit.
#
# Results: $BENCH_OUT/performance-results.{json,txt} (load test), $BENCH_OUT/performance-bench.txt
# (Go benchmarks), $BENCH_OUT/performance-pprof-{cpu,allocs,ceiling}.txt (`go tool pprof -top` of
# the plugin and of the ceiling under load); docs/performance.md summarises them.
#
# Environment:
#   BENCH_DURATION  measured time per target (default 16s: four targets, and make bench on a fresh
#                   machine stays under 10 minutes)
#   BENCH_PHASE     length of one alternating phase (default 4s: four rounds of phases)
#   BENCH_WARMUP    unmeasured load per target first (default 2s)
#   BENCH_CONNS     concurrent connections (default 32)
#   BENCH_GO        1 (default) runs the Go benchmarks, 0 skips them
#   BENCH_BENCHTIME go test -benchtime (default 1s; the 10,000-company benchmarks of backend/
#                   take about 20 s of it, one first-reads operation being 15 s)
#   BENCH_PROFILE   seconds of the profiling pass (default 10; 0 skips it)
#   BENCH_OUT       output directory (default docs/performance/)
#   BENCH_NOTE      free text recorded with the results
#   BENCH_EXTRA_PLUGIN  path to another build of the plugin, for A/B experiments: registered as
#                   vault-plugin-secrets-concur-b, enabled at concur-b/, configured the same way
#                   (companies/bench included), and read as two more targets (creds-b,
#                   companies-b) in the same run
#   BENCH_SCALE     1 (default) runs the partner-scale measurements (e2e TestScaleMetricsAndStartup
#                   and TestScaleFailover: scrape of concur/metrics at 2,000 and 10,000 companies,
#                   the plugin's start-up with 10,000 stored, a 3-node raft fail-over with 2,000;
#                   about 5 minutes on 2 cores) into $BENCH_OUT/performance-scale.txt; 0 skips them
#   BENCH_SCALE_COMPANIES     companies of the large scrape and the start-up (default 10000)
#   BENCH_SCALE_HA_COMPANIES  companies of the fail-over (default 2000; 10000 where the machine allows)
#   VERSION         plugin version (default v0.3.0)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PLUGIN_NAME=vault-plugin-secrets-concur
VERSION=${VERSION:-v0.3.0}
DURATION=${BENCH_DURATION:-16s}
PHASE=${BENCH_PHASE:-4s}
WARMUP=${BENCH_WARMUP:-2s}
PROFILE=${BENCH_PROFILE:-10}
CEILING_NAME=ceiling
CONNS=${BENCH_CONNS:-32}
OUT=${BENCH_OUT:-$ROOT/docs/performance}
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
say "plugin $VERSION, simulator and ceiling plugin (make build sim ceiling)"
make --no-print-directory build sim ceiling VERSION="$VERSION" >&2
PLUGIN=$ROOT/bin/$PLUGIN_NAME
SIM=$ROOT/bin/concur-sim
CEILING=$ROOT/bin/$CEILING_NAME
[[ -x $PLUGIN && -x $SIM && -x $CEILING ]] || die "plugin, simulator or ceiling missing after make build sim ceiling"
[[ -z $EXTRA || -x $EXTRA ]] || die "BENCH_EXTRA_PLUGIN=$EXTRA is not an executable"

mkdir -p .dev
# shellcheck disable=SC2012 # run directories are named by this script
ls -1dt .dev/bench-* 2>/dev/null | tail -n +4 | xargs -r rm -rf || true
RUN=$ROOT/.dev/bench-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$RUN/plugins"
say "load generator (e2e/loadtest)"
(cd e2e && CGO_ENABLED=0 go build -o "$RUN/loadtest" ./loadtest)

# --- Go benchmarks -------------------------------------------------------------------------
T_GO=$SECONDS
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

T_GO=$((SECONDS - T_GO))
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
cp "$CEILING" "$RUN/plugins/$CEILING_NAME"
[[ -z $EXTRA ]] || cp "$EXTRA" "$RUN/plugins/$PLUGIN_NAME-b"
say "Vault dev server on $VAULT_ADDR"
set -m
"$VAULT" server -dev -dev-root-token-id="$ROOT_TOKEN" -dev-listen-address="127.0.0.1:$VAULT_PORT" \
  -config="$RUN/plugins.hcl" -log-level=warn >"$RUN/vault.log" 2>&1 &
VAULT_PID=$!
PGIDS+=("$VAULT_PID")
set +m
wait_until 60 "Vault" "$VAULT" status

register() { # register PLUGIN-NAME VERSION [vault plugin register flags...]: by SHA-256 and version
  local name=$1 version=$2 sha
  shift 2
  sha=$(sha256sum "$RUN/plugins/$name" | cut -d' ' -f1)
  "$VAULT" plugin register -sha256="$sha" -version="$version" "$@" secret "$name" >&2
}
mount_concur() { # mount_concur PLUGIN-NAME MOUNT [vault plugin register flags...]
  local name=$1 mount=$2 rt
  shift 2
  register "$name" "$VERSION" "$@"
  "$VAULT" secrets enable -path="$mount" -plugin-version="$VERSION" "$name" >&2
  rt=$(curl -fsS -X POST "$SIM_URL/_sim/request-token" | json_field request_token)
  [[ -n $rt ]] || die "the simulator gave no request token"
  "$VAULT" write "$mount/config" client_id="$CLIENT_ID" client_secret="$CLIENT_SECRET" \
    company_uuid="$COMPANY_UUID" request_token="$rt" base_url="$SIM_URL" \
    allowed_hosts='http://127.0.0.1:*' >/dev/null
}
# The plugin serves pprof on loopback for the profiling pass: registered with the
# environment variable that enables it (it serves nothing without).
PPROF_ADDR=127.0.0.1:$(free_port)
say "register, enable and configure the plugin at concur/ (pprof on $PPROF_ADDR for this run)"
mount_concur "$PLUGIN_NAME" concur -env="CONCUR_PLUGIN_PPROF_ADDR=$PPROF_ADDR"
add_company() { # add_company MOUNT: a new company of the simulator at MOUNT/companies/bench
  local company uuid rt
  company=$(curl -fsS -X POST "$SIM_URL/_sim/companies")
  uuid=$(json_field company_uuid <<<"$company")
  rt=$(json_field request_token <<<"$company")
  [[ -n $uuid && -n $rt ]] || die "the simulator made no company: $company"
  "$VAULT" write "$1/companies/bench" company_uuid="$uuid" request_token="$rt" >/dev/null
}
say "a named company at concur/companies/bench"
add_company concur
say "register and enable the ceiling plugin at ceiling/"
CEILING_VERSION=$("$CEILING" -version | awk '{print $2}')
CEILING_PPROF_ADDR=127.0.0.1:$(free_port)
register "$CEILING_NAME" "$CEILING_VERSION" -env="CONCUR_PLUGIN_PPROF_ADDR=$CEILING_PPROF_ADDR"
"$VAULT" secrets enable -path=ceiling -plugin-version="$CEILING_VERSION" "$CEILING_NAME" >&2
TARGETS=creds=/v1/concur/creds,ceiling=/v1/ceiling/creds,companies=/v1/concur/companies/bench/creds,kv=/v1/secret/data/bench
COMPARE=creds/ceiling:0.97,creds/kv:0.80,companies/ceiling
PLUGINS=$PLUGIN_NAME,$CEILING_NAME
if [[ -n $EXTRA ]]; then
  say "A/B: $EXTRA at concur-b/"
  mount_concur "$PLUGIN_NAME-b" concur-b
  add_company concur-b
  TARGETS+=,creds-b=/v1/concur-b/creds,companies-b=/v1/concur-b/companies/bench/creds
  COMPARE+=,creds-b/ceiling,companies-b/ceiling,creds/creds-b,companies/companies-b
  PLUGINS+=,$PLUGIN_NAME-b
fi
MOUNTS=$("$VAULT" secrets list)
grep -q '^secret/ .*kv' <<<"$MOUNTS" || die "the dev server has no kv at secret/"

# --- the load test -----------------------------------------------------------------------------
T_LOAD=$SECONDS
say "load test: $DURATION per target, $CONNS connections, alternating $PHASE phases"
"$RUN/loadtest" -vault-addr "$VAULT_ADDR" -token "$ROOT_TOKEN" -sim-url "$SIM_URL" \
  -targets "$TARGETS" -compare "$COMPARE" -plugins "$PLUGINS" -vault-pid "$VAULT_PID" -sim-pid "$SIM_PID" \
  -duration "$DURATION" -phase "$PHASE" -warmup "$WARMUP" -conns "$CONNS" -note "${BENCH_NOTE:-}" \
  -out-json "$RUN/performance-results.json" -out-text "$RUN/performance-results.txt"
cp "$RUN/performance-results.json" "$RUN/performance-results.txt" "$OUT/"

T_LOAD=$((SECONDS - T_LOAD))
# --- profiling pass ------------------------------------------------------------------------------
T_PROFILE=$SECONDS
# After the measured run, so the profiler's own cost is not in its figures: the plugin's two
# creds paths and the ceiling's under the same load, one phase each, CPU and allocations of
# both plugin processes sampled over all three phases.
fetch() { # fetch OUT URL: one profile
  curl -fsS -o "$1" "$2" || die "no profile from $2"
}
if ((PROFILE > 0)); then
  say "profiling pass: ${PROFILE}s of concur/creds, companies/bench/creds and ceiling/creds, pprof CPU and allocations"
  third=$(((PROFILE + 2) / 3))
  "$RUN/loadtest" -vault-addr "$VAULT_ADDR" -token "$ROOT_TOKEN" -sim-url "$SIM_URL" -kv-write "" \
    -targets creds=/v1/concur/creds,companies=/v1/concur/companies/bench/creds,ceiling=/v1/ceiling/creds \
    -plugins "$PLUGIN_NAME,$CEILING_NAME" -vault-pid "$VAULT_PID" -sim-pid "$SIM_PID" \
    -duration "${third}s" -phase "${third}s" -warmup 1s -conns "$CONNS" \
    -out-json "$RUN/profile-load.json" >"$RUN/profile-load.txt" &
  load_pid=$!
  sleep 4 # the warm-up (1 s per target), and a second into the measured load
  window=$((3 * third - 2))
  pids=()
  for p in "cpu http://$PPROF_ADDR/debug/pprof/profile" "allocs http://$PPROF_ADDR/debug/pprof/allocs" \
    "ceiling-cpu http://$CEILING_PPROF_ADDR/debug/pprof/profile" "ceiling-allocs http://$CEILING_PPROF_ADDR/debug/pprof/allocs"; do
    fetch "$RUN/${p%% *}.pprof" "${p#* }?seconds=$window" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a profile is missing (see above)"; done
  wait "$load_pid" || die "the profiling pass's load failed (see $RUN/profile-load.txt)"
  reqs=$(grep -o '"requests": [0-9]*' "$RUN/profile-load.json" | head -n3 | tr -d '"' | awk '{print $2}' | paste -sd' ')
  read -r r_creds r_companies r_ceiling <<<"$reqs"
  stamp="sampled over ${window}s of $CONNS connections; $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  note="# the plugin ($PLUGIN_NAME $VERSION) under ${third}s of concur/creds ($r_creds requests) and ${third}s of"
  note+=" companies/bench/creds ($r_companies requests), $stamp"
  top() { # top PROFILE: its CPU or allocation tops, by go tool pprof
    if [[ $1 == *cpu.pprof ]]; then
      echo "# go tool pprof -top ${1##*/}"; go tool pprof -symbolize=none -top "$1" 2>/dev/null
      echo; echo "# go tool pprof -top -cum ${1##*/}"; go tool pprof -symbolize=none -top -cum "$1" 2>/dev/null
    else
      echo "# go tool pprof -top -sample_index=alloc_objects ${1##*/}"
      go tool pprof -symbolize=none -top -sample_index=alloc_objects "$1" 2>/dev/null
      echo; echo "# go tool pprof -top -sample_index=alloc_space ${1##*/}"
      go tool pprof -symbolize=none -top -sample_index=alloc_space "$1" 2>/dev/null
    fi
  }
  { echo "$note"; top "$RUN/cpu.pprof"; } >"$OUT/performance-pprof-cpu.txt"
  { echo "$note"; top "$RUN/allocs.pprof"; } >"$OUT/performance-pprof-allocs.txt"
  { echo "# the ceiling plugin under ${third}s of ceiling/creds ($r_ceiling requests), $stamp"
    top "$RUN/ceiling-cpu.pprof"; echo; top "$RUN/ceiling-allocs.pprof"; } >"$OUT/performance-pprof-ceiling.txt"
fi

T_PROFILE=$((SECONDS - T_PROFILE))
# --- partner scale ---------------------------------------------------------------------------------
# Through real Vault servers of their own (the e2e harness: raft storage, the plugin registered by
# SHA-256 and version, the Concur simulator in the test process), one after the other, after the
# load test so that neither disturbs the other. Figures only: nothing here is a pass/fail target.
T_SCALE=$SECONDS
if [[ ${BENCH_SCALE:-1} == 1 ]]; then
  say "partner scale: scrape at 2,000 and ${BENCH_SCALE_COMPANIES:-10000} companies, start-up, fail-over with ${BENCH_SCALE_HA_COMPANIES:-2000}"
  {
    echo "# e2e TestScaleMetricsAndStartup, TestScaleFailover at commit $(git rev-parse --short HEAD)$(
      git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version)"
  } >"$RUN/performance-scale.txt"
  (cd e2e && E2E_SCALE=1 E2E_SCALE_OUT="$RUN/performance-scale.txt" VAULT_BIN="$VAULT" PLUGIN_BIN="$PLUGIN" \
    E2E_SCALE_COMPANIES="${BENCH_SCALE_COMPANIES:-10000}" E2E_SCALE_HA_COMPANIES="${BENCH_SCALE_HA_COMPANIES:-2000}" \
    go test -count=1 -timeout 40m -run '^TestScale' -v . >"$RUN/scale.log" 2>&1) ||
    die "the partner-scale measurements failed (see $RUN/scale.log)"
  cp "$RUN/performance-scale.txt" "$OUT/performance-scale.txt"
  sed 1,2d "$OUT/performance-scale.txt" >&2
fi
T_SCALE=$((SECONDS - T_SCALE))
say "took ${SECONDS}s: Go benchmarks ${T_GO}s, load test ${T_LOAD}s, profiling ${T_PROFILE}s, partner scale ${T_SCALE}s, builds and setup the rest"
say "results in ${OUT#"$ROOT"/}/: performance-results.{txt,json}$([[ ${BENCH_GO:-1} == 1 ]] && echo ', performance-bench.txt')$(
  ((PROFILE > 0)) && echo ', performance-pprof-{cpu,allocs,ceiling}.txt')$(
  [[ ${BENCH_SCALE:-1} == 1 ]] && echo ', performance-scale.txt')"
grep -E '^(creds|companies)(-b)?/' "$RUN/performance-results.txt" >&2
