#!/usr/bin/env bash
# make dev: a local playground.
#
# Builds what is missing (bin/vault from tools/, the plugin, the Concur simulator), starts
#   * the Concur simulator (bin/concur-sim) on a free loopback port, and
#   * `vault server -dev` with a plugin directory,
# registers the plugin by SHA-256 and version as operators do, enables it at concur/, writes
# concur/config against the simulator with a fresh company request token, and prints what to
# try. Ctrl-C stops everything it started. Every run gets a fresh directory under .dev/.
#
# Environment: VERSION (plugin version, default v0.3.0), DEV_VAULT_PORT (default 8200 when
# free, else a free port), DEV_SIM_PORT (default 0: a free port), DEV_ROOT_TOKEN (default
# "root"), DEV_LOG_LEVEL (Vault log level, default debug), DEV_ROTATION (simulator
# refresh-token rotation: stable|rotate|grace, default rotate).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PLUGIN_NAME=vault-plugin-secrets-concur
VERSION=${VERSION:-v0.3.0}
ROOT_TOKEN=${DEV_ROOT_TOKEN:-root}
LOG_LEVEL=${DEV_LOG_LEVEL:-debug}
ROTATION=${DEV_ROTATION:-rotate}

SCRIPT=dev.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

for tool in curl sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# --- build what is missing -------------------------------------------------------------
say "Vault (bin/vault, built once from tools/)"
VAULT=$(scripts/vault.sh)
say "plugin $VERSION and simulator (make build sim)"
make --no-print-directory build sim VERSION="$VERSION" >&2
PLUGIN=$ROOT/bin/$PLUGIN_NAME
SIM=$ROOT/bin/concur-sim
[[ -x $PLUGIN ]] || die "$PLUGIN missing after make build"
[[ -x $SIM ]] || die "$SIM missing after make sim"

# --- run directory, ports ----------------------------------------------------------------
mkdir -p .dev
# Keep the five most recent runs.
# shellcheck disable=SC2012 # run directories are named by this script
ls -1dt .dev/run-* 2>/dev/null | tail -n +6 | xargs -r rm -rf || true
RUN=$ROOT/.dev/run-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$RUN/plugins"

if [[ -n ${DEV_VAULT_PORT:-} ]]; then
  VAULT_PORT=$DEV_VAULT_PORT
elif ! port_busy 8200 && ! port_busy 8201; then
  VAULT_PORT=8200
else
  VAULT_PORT=$(free_port)
fi
SIM_PORT=${DEV_SIM_PORT:-0} # 0: the simulator picks a free port and prints its URL

STOP_MESSAGE="stopping (logs kept in ${RUN#"$ROOT"/})"

# --- Concur simulator ------------------------------------------------------------------------
CLIENT_ID=dev-client-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
CLIENT_SECRET=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
COMPANY_UUID=$(cat /proc/sys/kernel/random/uuid)
say "Concur simulator (log: ${RUN#"$ROOT"/}/sim.log)"
set -m
"$SIM" --listen "127.0.0.1:$SIM_PORT" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" \
  --company-uuid "$COMPANY_UUID" --rotation "$ROTATION" >"$RUN/sim.log" 2>&1 &
PGIDS+=($!)
set +m
wait_until 30 "the simulator" grep -q "listening on" "$RUN/sim.log"
SIM_URL=$(grep -o 'listening on [^ ]*' "$RUN/sim.log" | head -n1 | awk '{print $3}')
SIM_URL=${SIM_URL%/}
[[ $SIM_URL == http*://* ]] || die "cannot read the simulator's URL from $RUN/sim.log"
say "Concur simulator on $SIM_URL"
wait_until 30 "the simulator's admin API" curl -fsS "$SIM_URL/_sim/users"

# --- Vault dev server ------------------------------------------------------------------------
export VAULT_ADDR=http://127.0.0.1:$VAULT_PORT
export VAULT_TOKEN=$ROOT_TOKEN
unset VAULT_NAMESPACE VAULT_CACERT VAULT_CAPATH VAULT_CLIENT_CERT VAULT_CLIENT_KEY
cat >"$RUN/plugins.hcl" <<EOF
plugin_directory = "$RUN/plugins"
EOF
cp "$PLUGIN" "$RUN/plugins/$PLUGIN_NAME"
SHA=$(sha256sum "$RUN/plugins/$PLUGIN_NAME" | cut -d' ' -f1)
say "Vault dev server on $VAULT_ADDR (log: ${RUN#"$ROOT"/}/vault.log)"
set -m
"$VAULT" server -dev -dev-root-token-id="$ROOT_TOKEN" -dev-listen-address="127.0.0.1:$VAULT_PORT" \
  -config="$RUN/plugins.hcl" -log-level="$LOG_LEVEL" >"$RUN/vault.log" 2>&1 &
PGIDS+=($!)
set +m
wait_until 60 "Vault" "$VAULT" status

say "register and enable the plugin (as operators do)"
(
  set -x
  "$VAULT" plugin register -sha256="$SHA" -version="$VERSION" secret "$PLUGIN_NAME"
  "$VAULT" secrets enable -path=concur -plugin-version="$VERSION" "$PLUGIN_NAME"
) 2>&1 | sed 's/^/    /' >&2

say "configure concur/ against the simulator with a company request token"
REQUEST_TOKEN=$(curl -fsS -X POST "$SIM_URL/_sim/request-token" | json_field request_token)
[[ -n $REQUEST_TOKEN ]] || die "the simulator gave no request token"
"$VAULT" write concur/config \
  client_id="$CLIENT_ID" client_secret="$CLIENT_SECRET" company_uuid="$COMPANY_UUID" \
  request_token="$REQUEST_TOKEN" base_url="$SIM_URL" allowed_hosts='http://127.0.0.1:*' >&2
USER_ID=$(curl -fsS "$SIM_URL/_sim/users" | json_field id)
[[ -n $USER_ID ]] || USER_ID="<user-id from $SIM_URL/_sim/users>"

VAULT_REL=${VAULT#"$ROOT"/}
cat <<EOF

  Vault dev server and Concur simulator are running.

    export VAULT_ADDR=$VAULT_ADDR
    export VAULT_TOKEN=$ROOT_TOKEN        # root token

  The Vault CLI is $VAULT_REL (no installed vault needed). Try, in another shell from $ROOT:

    $VAULT_REL read concur/creds
    $VAULT_REL read concur/profile/$USER_ID
    $VAULT_REL read concur/config

  Also: $VAULT_REL write -f concur/rotate; $VAULT_REL read concur/profile user_name=<userName>
  Another company (as a partner connects one): curl -s -XPOST $SIM_URL/_sim/companies
    answers company_uuid and request_token; then
    $VAULT_REL write concur/companies/<company_uuid> company_uuid=<company_uuid> request_token=<request_token>
    $VAULT_REL read concur/companies/<company_uuid>/creds
  Simulator: $SIM_URL (admin API under $SIM_URL/_sim/: users, stats, fault, revoke, ...)
  Logs: ${RUN#"$ROOT"/}/vault.log and ${RUN#"$ROOT"/}/sim.log

  Press Ctrl-C to stop everything.
EOF

# Run until Ctrl-C or until one of the processes dies.
while :; do
  for pg in "${PGIDS[@]}"; do
    kill -0 -- "-$pg" 2>/dev/null || die "a process exited unexpectedly; see $RUN/vault.log and $RUN/sim.log"
  done
  sleep 1
done
