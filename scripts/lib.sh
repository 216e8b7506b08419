# shellcheck shell=bash
# Helpers shared by scripts/dev.sh and scripts/bench.sh: ports, waiting, and
# stopping every process group they started. Source it after setting SCRIPT
# (the caller's name, for messages) and RUN (the run directory, for logs).

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '%s: %s\n' "${SCRIPT:-script}" "$*" >&2; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a port p that is free with p+1 free too (vault -dev puts
# its cluster listener on p+1).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! port_busy "$p" && ! port_busy $((p + 1)); then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# Each background process gets its own process group (start it under set -m
# and append $! to PGIDS), so that Ctrl-C reaches only the script, which then
# stops each group (Vault's plugin processes included). STOP_MESSAGE is said
# when stopping.
PGIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if ((${#PGIDS[@]})); then
    say "${STOP_MESSAGE:-stopping}"
    for pg in "${PGIDS[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
      local alive=0
      for pg in "${PGIDS[@]}"; do kill -0 -- "-$pg" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.1
    done
    for pg in "${PGIDS[@]}"; do kill -KILL -- "-$pg" 2>/dev/null || true; done
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds,
# failing early if a started process died.
wait_until() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what (logs in $RUN)"
    for pg in "${PGIDS[@]}"; do
      kill -0 -- "-$pg" 2>/dev/null || die "a process exited while waiting for $what; see $RUN/*.log"
    done
    sleep 0.2
  done
}

# json_field NAME < json: the first string value of "NAME".
json_field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" | head -n1; }
