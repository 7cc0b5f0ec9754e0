#!/usr/bin/env bash
# scripts/services.sh — runs the project's Go services (built into bin/ by `make build`) as local
# background processes on the local stack, with pidfiles in .state/run and logs in .state/logs.
#
#   scripts/services.sh start [SERVICE...]   start (default: all), wait until each answers; a running
#                                            service whose binary changed since it started (make build)
#                                            is restarted, an unchanged one left alone
#   scripts/services.sh stop [SERVICE...]    stop (default: all, in reverse order)
#   scripts/services.sh status               one line per service: up/down
#   scripts/services.sh logs                 follow every service's log
#
# Services: todo-api (HTTP on 127.0.0.1:8080), notifier (consumer group "notifier", metrics on
# 127.0.0.1:9101), analytics (group "analytics", GET /v1/stats on 127.0.0.1:8082, metrics on 127.0.0.1:9102).
# Each consumer gets its own Kafka principal (User:notifier, User:analytics: KAFKA_SASL_USERNAME and its
# password from $ENV_FILE) and nothing of the others'; todo-api gets no Kafka credentials at all.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(todo-api notifier analytics)
BIN_DIR="$REPO_DIR/bin"

load_env() {
  [[ -f "$ENV_FILE" ]] || die "no $ENV_FILE: start the local stack first (scripts/stack.sh up, or make run)"
  # shellcheck disable=SC1090
  . "$ENV_FILE"
}

# bin_sum FILE — the sha256 of FILE (what $RUN_DIR/NAME.bin records for the binary NAME started with).
bin_sum() {
  sha256sum "$1" | awk '{ print $1 }'
}

# restart_if_changed NAME BIN — stops NAME if it runs a binary other than BIN's current content (a
# `make build` since it started), so that start_bg starts the new one; an unchanged one is left alone.
restart_if_changed() {
  local name=$1 bin=$2 want have pid
  pid=$(pid_of "$name") || return 0
  want=$(bin_sum "$bin")
  have=$(cat "$RUN_DIR/$name.bin" 2>/dev/null || true)
  [[ "$have" == "$want" ]] && return 0
  if [[ -z "$have" ]]; then
    log "$name (pid $pid) runs a binary of unknown version (no $RUN_DIR/$name.bin): restarting it with $bin"
  else
    log "$name (pid $pid) runs an older binary (sha256 ${have:0:12}, $bin is now ${want:0:12}): restarting it"
  fi
  stop_bg "$name" 20 || die "$name (pid $pid) could not be stopped for its restart"
  rm -f "$RUN_DIR/$name.bin"
}

# run_service NAME LOGFILE BIN VAR=VALUE... — starts BIN as NAME (start_bg) with the given variables in
# its environment: exported inside a subshell, never on a command line (where `ps` would show the
# secrets among them); the stack's other secrets and URLs ($ENV_FILE) are not passed on. Records the
# binary's sha256 in $RUN_DIR/NAME.bin once it started, and a sha256 of its variables in
# $RUN_DIR/NAME.env: a running service whose variables changed (e.g. its Kafka credentials) is restarted.
run_service() {
  local name=$1 logfile=$2 bin=$3 sum envsum
  shift 3
  sum=$(bin_sum "$bin")
  envsum=$(printf '%s\0' "$@" | sha256sum | awk '{ print $1 }')
  if is_running "$name" && [[ "$(cat "$RUN_DIR/$name.env" 2>/dev/null)" != "$envsum" ]]; then
    log "$name (pid $(pid_of "$name")) runs with other settings than $ENV_FILE now gives it: restarting it"
    stop_bg "$name" 20 || die "$name could not be stopped for its restart"
  fi
  if is_running "$name"; then
    start_bg "$name" "$logfile" "$bin" # logs "already running"
    return 0
  fi
  (
    # shellcheck disable=SC2046 # the names in the env file are plain identifiers
    unset $(sed -n 's/^export \([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$ENV_FILE")
    local kv
    for kv in "$@"; do export "${kv?}"; done
    start_bg "$name" "$logfile" "$bin"
  ) || return 1
  printf '%s\n' "$sum" >"$RUN_DIR/$name.bin"
  printf '%s\n' "$envsum" >"$RUN_DIR/$name.env"
}

start_one() {
  local name=$1 bin="$BIN_DIR/$1" logfile="$LOG_DIR/$1.log" t0
  [[ -x "$bin" ]] || die "$bin is missing: run 'make build' first"
  t0=$(now_ms)
  restart_if_changed "$name" "$bin"
  case $name in
    todo-api)
      run_service todo-api "$logfile" "$bin" DATABASE_URL="$TODO_API_DATABASE_URL" JWT_SECRET="$JWT_SECRET" \
        SCHEMA_REGISTRY_URL="$SCHEMA_REGISTRY_URL" HTTP_ADDR=127.0.0.1:8080 ||
        die "todo-api did not start"
      wait_ready todo-api "todo-api" 60 "$logfile" http_ok http://127.0.0.1:8080/readyz ||
        die "todo-api is not ready (log: $logfile)"
      log "todo-api     up   http://127.0.0.1:8080 ($(elapsed_s "$t0")s)"
      ;;
    notifier)
      run_service notifier "$logfile" "$bin" KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
        KAFKA_SASL_USERNAME=notifier KAFKA_SASL_PASSWORD="${KAFKA_NOTIFIER_PASSWORD:-}" \
        SCHEMA_REGISTRY_URL="$SCHEMA_REGISTRY_URL" DATABASE_URL="$NOTIFIER_DATABASE_URL" GROUP_ID=notifier \
        METRICS_ADDR=127.0.0.1:9101 ||
        die "notifier did not start"
      wait_ready notifier "notifier" 60 "$logfile" http_ok http://127.0.0.1:9101/readyz ||
        die "notifier is not ready (log: $logfile)"
      log "notifier     up   group notifier, metrics http://127.0.0.1:9101/metrics ($(elapsed_s "$t0")s)"
      ;;
    analytics)
      run_service analytics "$logfile" "$bin" KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
        KAFKA_SASL_USERNAME=analytics KAFKA_SASL_PASSWORD="${KAFKA_ANALYTICS_PASSWORD:-}" \
        SCHEMA_REGISTRY_URL="$SCHEMA_REGISTRY_URL" DATABASE_URL="$ANALYTICS_DATABASE_URL" JWT_SECRET="$JWT_SECRET" \
        GROUP_ID=analytics HTTP_ADDR=127.0.0.1:8082 METRICS_ADDR=127.0.0.1:9102 ||
        die "analytics did not start"
      wait_ready analytics "analytics" 60 "$logfile" http_ok http://127.0.0.1:9102/readyz ||
        die "analytics is not ready (log: $logfile)"
      log "analytics    up   group analytics, http://127.0.0.1:8082/v1/stats, metrics http://127.0.0.1:9102/metrics ($(elapsed_s "$t0")s)"
      ;;
    *) die "unknown service $name (known: ${SERVICES[*]})" ;;
  esac
}

cmd=${1:-}
shift || true
case $cmd in
  start)
    load_env
    for s in "${@:-${SERVICES[@]}}"; do start_one "$s"; done
    ;;
  stop)
    names=("${@:-${SERVICES[@]}}")
    for ((i = ${#names[@]} - 1; i >= 0; i--)); do
      if is_running "${names[i]}"; then
        stop_bg "${names[i]}" 20
        rm -f "$RUN_DIR/${names[i]}.bin" "$RUN_DIR/${names[i]}.env"
        log "${names[i]} stopped"
      fi
    done
    ;;
  status)
    rc=0
    for s in "${SERVICES[@]}"; do
      if is_running "$s"; then
        printf '%-12s up    pid %s, log %s\n' "$s" "$(pid_of "$s")" "$LOG_DIR/$s.log"
      else
        printf '%-12s down\n' "$s"
        rc=1
      fi
    done
    exit $rc
    ;;
  logs)
    mkdir -p "$LOG_DIR"
    files=()
    for s in "${SERVICES[@]}"; do files+=("$LOG_DIR/$s.log"); touch "$LOG_DIR/$s.log"; done
    exec tail -n 20 -F "${files[@]}"
    ;;
  *)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    [[ -z $cmd || $cmd == -h || $cmd == --help ]] || exit 2
    ;;
esac
