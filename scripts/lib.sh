# shellcheck shell=bash
# scripts/lib.sh — small bash library for the local stack (scripts/stack.sh) and for any script that runs
# a local process of this project (the Go services, test drivers). Source it; it defines functions and a
# few variables and changes no shell option of the caller:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"      # from a script in scripts/
#
# Variables it sets (all absolute paths, computed from this file's location, never from $PWD):
#   REPO_DIR   the repository root (the folder that holds scripts/)
#   STATE_DIR  $REPO_DIR/.state — every datum, log, config and unpacked component of the local stack
#   RUN_DIR    $STATE_DIR/run   — pidfiles (NAME.pid) and lock files
#   LOG_DIR    $STATE_DIR/logs  — one log per process
#   ENV_FILE   $STATE_DIR/env   — `export NAME=value` lines (passwords, URLs); mode 600
#
# Process conventions: a process started with start_bg NAME is identified by $RUN_DIR/NAME.pid (its pid)
# and $RUN_DIR/NAME.stime (its start time in clock ticks since boot, from /proc/PID/stat), so a pid that
# the kernel reused after a reboot or a crash is never taken for ours. It runs in its own session and
# process group (setsid), detached from the terminal (nohup, stdin from /dev/null), so closing the shell
# that started it does not stop it; stop_bg signals the whole group.

if [[ -n "${_TODO_LIB_SH_LOADED:-}" ]]; then
  return 0
fi
_TODO_LIB_SH_LOADED=1

# these variables are for the scripts that source this file
# shellcheck disable=SC2034
{
  REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
  STATE_DIR="$REPO_DIR/.state"
  RUN_DIR="$STATE_DIR/run"
  LOG_DIR="$STATE_DIR/logs"
  ENV_FILE="$STATE_DIR/env"
}

# log MESSAGE... — prints "[stack] MESSAGE" to stderr (progress; keeps stdout clean for data such as `env`).
log() {
  printf '[stack] %s\n' "$*" >&2
}

# die MESSAGE... — prints "[stack] ERROR: MESSAGE" to stderr and exits 1.
die() {
  printf '[stack] ERROR: %s\n' "$*" >&2
  exit 1
}

# now_ms — milliseconds since the epoch (for timings).
now_ms() {
  date +%s%3N
}

# elapsed_s START_MS — seconds elapsed since START_MS, with one decimal (e.g. "4.2").
elapsed_s() {
  local start=$1 end
  end=$(now_ms)
  awk -v d="$((end - start))" 'BEGIN { printf "%.1f", d / 1000 }'
}

# _proc_stime PID — prints the start time of PID (field 22 of /proc/PID/stat, clock ticks since boot);
# fails if PID does not exist.
_proc_stime() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # the command name (field 2) may hold spaces and parentheses: cut after the last ')'
  stat=${stat##*) }
  # now field 3 is first: the start time (field 22) is the 20th word
  local -a f
  read -r -a f <<<"$stat"
  [[ -n "${f[19]:-}" ]] || return 1
  printf '%s\n' "${f[19]}"
}

# pid_of NAME — prints the pid recorded for NAME if that process is alive (and is the same process that
# start_bg started: its start time matches), else prints nothing and fails.
pid_of() {
  local name=$1 pid stime want
  [[ -f "$RUN_DIR/$name.pid" ]] || return 1
  pid=$(<"$RUN_DIR/$name.pid") || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stime=$(_proc_stime "$pid") || return 1
  if [[ -f "$RUN_DIR/$name.stime" ]]; then
    want=$(<"$RUN_DIR/$name.stime")
    [[ "$stime" == "$want" ]] || return 1
  fi
  # a zombie is not running
  [[ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" != "Z" ]] || return 1
  printf '%s\n' "$pid"
}

# is_running NAME — succeeds if the process that start_bg started as NAME is alive.
is_running() {
  pid_of "$1" >/dev/null
}

# start_bg NAME LOGFILE CMD... — starts CMD in the background, in its own session (setsid), immune to
# hangups (nohup), stdin from /dev/null, stdout and stderr appended to LOGFILE; records its pid in
# $RUN_DIR/NAME.pid (and start time in NAME.stime). Does nothing (and succeeds) if NAME is already running.
# The environment of CMD is the caller's: wrap CMD in `env -i VAR=... CMD` to give it a clean one, or,
# for secrets (which must not appear on a command line), call start_bg in a subshell that unsets what
# CMD must not see and exports what it needs (scripts/services.sh run_service, stack.sh start_connect).
# Fails if CMD exits within the first 0.2 s (and prints the tail of LOGFILE).
start_bg() {
  local name=$1 logfile=$2 pid stime
  shift 2
  [[ $# -gt 0 ]] || { log "start_bg: no command given for $name"; return 2; }
  if is_running "$name"; then
    log "$name is already running (pid $(pid_of "$name"))"
    return 0
  fi
  mkdir -p "$RUN_DIR" "$(dirname "$logfile")"
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.stime"
  printf '\n===== %s: starting %s =====\n' "$(date -Is)" "$name" >>"$logfile"
  # In a non-interactive shell a background job is not a process-group leader, so setsid makes the
  # session without forking, and the subshell, setsid and nohup all exec: $! is the pid of CMD itself.
  (
    # close every descriptor above 2 that the caller holds open (a lock file, a pipe to a parent that
    # waits for EOF): a long-lived daemon must not keep them
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid nohup "$@" >>"$logfile" 2>&1 </dev/null
  ) &
  pid=$!
  # not a job of the calling shell: no "Killed"/"Terminated" notices from it when the process ends
  disown "$pid" 2>/dev/null || true
  printf '%s\n' "$pid" >"$RUN_DIR/$name.pid"
  if stime=$(_proc_stime "$pid"); then
    printf '%s\n' "$stime" >"$RUN_DIR/$name.stime"
  fi
  sleep 0.2
  if ! is_running "$name"; then
    log "$name exited right after start; last lines of $logfile:"
    tail -n 30 "$logfile" >&2
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.stime"
    return 1
  fi
  return 0
}

# stop_bg NAME [TIMEOUT] — stops the process started as NAME: SIGTERM to its process group, waits up to
# TIMEOUT seconds (default 30) for it to exit, then SIGKILL. Removes the pidfile. Succeeds (and does
# nothing) if NAME is not running.
stop_bg() {
  local name=$1 timeout=${2:-30} pid pgid target i
  if ! pid=$(pid_of "$name"); then
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.stime"
    return 0
  fi
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
  # signal the whole group only if start_bg made the process its leader
  if [[ "$pgid" == "$pid" ]]; then target="-$pid"; else target="$pid"; fi
  kill -TERM -- "$target" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    is_running "$name" || break
    sleep 0.1
  done
  if is_running "$name"; then
    log "$name (pid $pid) still running ${timeout}s after SIGTERM: sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      is_running "$name" || break
      sleep 0.1
    done
  fi
  if is_running "$name"; then
    log "$name (pid $pid) could not be stopped"
    return 1
  fi
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.stime"
  return 0
}

# _wait_loop PROCESS_NAME DESCRIPTION TIMEOUT LOGFILE CMD... — shared body of wait_until / wait_ready.
# PROCESS_NAME may be empty (no liveness check).
_wait_loop() {
  local pname=$1 desc=$2 timeout=$3 logfile=$4 deadline
  shift 4
  deadline=$(($(date +%s) + timeout))
  while :; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [[ -n "$pname" ]] && ! is_running "$pname"; then
      log "$desc: process $pname exited before it was ready; last lines of $logfile:"
      [[ -f "$logfile" ]] && tail -n 40 "$logfile" >&2
      return 1
    fi
    if (($(date +%s) >= deadline)); then
      log "$desc: not ready after ${timeout}s; last lines of $logfile:"
      [[ -f "$logfile" ]] && tail -n 40 "$logfile" >&2
      return 1
    fi
    sleep 0.5
  done
}

# wait_until DESCRIPTION TIMEOUT_SECONDS LOGFILE CMD... — runs CMD (output discarded) every 0.5 s until it
# succeeds (returns 0) or TIMEOUT_SECONDS pass; on timeout prints the last 40 lines of LOGFILE to stderr
# and returns 1. CMD may be a shell function.
wait_until() {
  local desc=$1 timeout=$2 logfile=$3
  shift 3
  _wait_loop "" "$desc" "$timeout" "$logfile" "$@"
}

# wait_ready NAME DESCRIPTION TIMEOUT_SECONDS LOGFILE CMD... — like wait_until, but also gives up at once
# (printing the log tail) when the process started as NAME by start_bg has exited.
wait_ready() {
  local name=$1
  shift
  _wait_loop "$name" "$@"
}

# port_open HOST PORT — succeeds if a TCP connection to HOST:PORT is accepted (1 s timeout).
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# port_owner PORT — prints what listens on TCP PORT ("users:((\"java\",pid=123,fd=4))"), empty if nothing.
port_owner() {
  ss -Hltnp "sport = :$1" 2>/dev/null | awk '{ print $NF }' | head -n 1
}

# http_ok URL — succeeds if GET URL answers 2xx within 3 s.
http_ok() {
  curl -fsS -o /dev/null --max-time 3 "$1"
}

# java_major JAVA_BIN — prints the major version of JAVA_BIN (8 for 1.8.0_x, 17 for 17.0.x, 25 for 25).
java_major() {
  local v
  v=$("$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java\.specification\.version =/ { print $2; exit }')
  v=${v## }
  v=${v%% *}
  [[ -n "$v" ]] || return 1
  if [[ "$v" == 1.* ]]; then v=${v#1.}; fi
  v=${v%%.*}
  [[ "$v" =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$v"
}

# find_java MIN_MAJOR — prints the path of a java binary whose major version is at least MIN_MAJOR,
# looking in this order at $JAVA_HOME/bin/java, `java` on PATH, then /usr/lib/jvm/*/bin/java (newest
# first). Fails with a message naming what to install when none fits.
find_java() {
  local min=$1 cand major seen=" " tried=()
  local -a cands=()
  [[ -n "${JAVA_HOME:-}" ]] && cands+=("$JAVA_HOME/bin/java")
  if command -v java >/dev/null 2>&1; then cands+=("$(command -v java)"); fi
  local d
  while IFS= read -r d; do
    cands+=("$d")
  done < <(for d in /usr/lib/jvm/*/bin/java; do [[ -e "$d" ]] && printf '%s\n' "$d"; done | sort -rV)
  for cand in "${cands[@]}"; do
    [[ -x "$cand" ]] || continue
    local real
    real=$(readlink -f "$cand")
    [[ "$seen" == *" $real "* ]] && continue
    seen+="$real "
    if major=$(java_major "$real"); then
      tried+=("$real ($major)")
      if ((major >= min)); then
        printf '%s\n' "$real"
        return 0
      fi
    fi
  done
  log "no Java $min or newer found (looked at JAVA_HOME, PATH and /usr/lib/jvm/*; found: ${tried[*]:-none})."
  log "Install a JDK $min+ (for example Temurin $min+ under /usr/lib/jvm, or a Debian openjdk-$min-jdk-headless" \
    "package where your release has one) or point JAVA_HOME at one."
  return 1
}

# rand_hex NBYTES — prints NBYTES random bytes as lowercase hex (2*NBYTES characters).
rand_hex() {
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
  printf '\n'
}

# env_get NAME [FILE] — prints the value of `export NAME=value` in FILE (default $ENV_FILE); fails if absent.
env_get() {
  local name=$1 file=${2:-$ENV_FILE} line
  [[ -f "$file" ]] || return 1
  line=$(grep -E "^export ${name}=" "$file" | tail -n 1) || return 1
  printf '%s\n' "${line#export "${name}"=}"
}

# env_set NAME VALUE [FILE] — sets `export NAME=VALUE` in FILE (default $ENV_FILE), replacing an existing
# line for NAME, keeping every other line; the file is created with mode 600. VALUE must not contain
# whitespace, quotes or backslashes (it is written unquoted so the file works with eval, `.`, and make).
env_set() {
  local name=$1 value=$2 file=${3:-$ENV_FILE} tmp
  if [[ "$value" =~ [[:space:]\'\"\\\`\$] ]]; then
    log "env_set: refusing a value for $name with whitespace, quotes, \$ or backslash"
    return 1
  fi
  mkdir -p "$(dirname "$file")"
  if [[ "$(env_get "$name" "$file" 2>/dev/null)" == "$value" ]] && grep -qE "^export ${name}=" "$file"; then
    return 0
  fi
  tmp=$(mktemp "$file.XXXXXX")
  chmod 600 "$tmp"
  if [[ -f "$file" ]]; then
    grep -vE "^export ${name}=" "$file" >"$tmp" || true
  fi
  printf 'export %s=%s\n' "$name" "$value" >>"$tmp"
  mv -f "$tmp" "$file"
  chmod 600 "$file"
}

# kafka_class CLASS ARGS... — runs a Java class from the local Kafka distribution (.state/dist/kafka/lib),
# e.g. `kafka_class org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list`.
# Logs of the tool go to stderr at WARN. Needs `scripts/stack.sh install` to have run.
kafka_class() {
  local java
  java=$(find_java 17) || return 1
  [[ -d "$STATE_DIR/dist/kafka/lib" ]] || { log "Kafka is not installed: run scripts/stack.sh install"; return 1; }
  local l4j="$STATE_DIR/conf/tools-log4j2.properties"
  if [[ ! -f "$l4j" ]]; then
    mkdir -p "$STATE_DIR/conf"
    cat >"$l4j" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
EOF
  fi
  "$java" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$l4j" -cp "$STATE_DIR/dist/kafka/lib/*" "$@"
}
