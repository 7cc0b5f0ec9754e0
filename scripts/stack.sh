#!/usr/bin/env bash
# scripts/stack.sh — the local stack without Docker: PostgreSQL 15, Kafka 4.3.1 (KRaft: one node, or three
# with BROKERS=3), Apicurio Registry 3.3.3 (Confluent-compatible API) and Kafka Connect 4.3.1 with the Debezium
# PostgreSQL connector 3.6.1.Final, plus Prometheus (Debian's package) scraping them, each a local process
# bound to 127.0.0.1. Everything it installs, configures,
# writes and logs lives under $REPO/.state (gitignored); Maven downloads are cached in ~/.m2.
#
#   scripts/stack.sh install   resolve and unpack the components (idempotent; apt-installs postgresql if missing)
#   scripts/stack.sh up        install if needed, then start PostgreSQL, Kafka, Apicurio, Connect, Prometheus
#                              (each only if down; a running Prometheus reloads a changed config)
#   scripts/stack.sh down      stop Prometheus, Connect, Apicurio, Kafka, PostgreSQL gracefully (all data kept)
#   scripts/stack.sh status    one line per component; exit 0 if all are up, 1 otherwise
#   scripts/stack.sh env       print `export NAME=value` lines: eval "$(scripts/stack.sh env)"
#   scripts/stack.sh start|stop COMPONENT   start or stop one of postgres, kafka (every node), kafka1, kafka2,
#                              kafka3 (one node), apicurio, connect, connect2, prometheus
#                              (for outage tests and operators; start assumes the components it needs are up)
#   scripts/stack.sh kill NAME     crash NAME (a component above or todo-api, notifier, analytics): SIGKILL;
#                              postgres: pg_ctl stop -m immediate. Nothing restarts it.
#   scripts/stack.sh restart NAME  clean restart of NAME: postgres pg_ctl restart -m fast, a service SIGTERM
#                              and start, any other stop and start
#
#   WORKERS=2 scripts/stack.sh up            also start a second Connect worker (connect2) in the same group
#   BROKERS=3 scripts/stack.sh up            three Kafka nodes (combined broker + controller, a quorum of
#                              three): another cluster than the one-node one (its own id and data in
#                              .state/kafka3), replication factor 3 and min.insync.replicas=2 for internal
#                              and Connect's topics. Without BROKERS, commands act on the running cluster
#                              ('up' starts one node when Kafka is down); 'up' with another BROKERS than the
#                              running cluster's is refused: 'down' first.
#
# Ports: PostgreSQL 5432, Kafka 9092 (controller 9093; BROKERS=3: node 2 9094/9095, node 3 9096/9097),
# Apicurio 8081 (management 9000), Connect 8083 (second worker 8084), Prometheus 9090; JMX exporter agents
# (Prometheus metrics of the JVMs): Kafka 9404 (nodes 2, 3: 9407, 9408), Connect 9405 (second worker 9406).
# Their configs: monitoring/ (copied to .state/conf on every start).
# Logs: .state/logs/{postgres,kafka,kafka2,kafka3,connect,connect2,apicurio}.log (JVM stdout/stderr in *.out).
# Configs are rewritten in .state/conf (and .state/postgres/todo-cdc.conf) on every 'up'; a running
# component picks a change up at the next 'down' + 'up'.
# shellcheck disable=SC2317 # readiness functions are called indirectly (wait_until / wait_ready)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION=4.3.1
DEBEZIUM_VERSION=3.6.1.Final
APICURIO_VERSION=3.3.3
JMX_EXPORTER_VERSION=1.0.1 # io.prometheus.jmx:jmx_prometheus_javaagent, the newest on Maven Central
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin

HOST=127.0.0.1
PG_PORT=5432
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
APICURIO_PORT=8081
APICURIO_MGMT_PORT=9000
CONNECT_PORT=8083 # worker N listens on CONNECT_PORT + N - 1 (worker 2: 8084)
KAFKA_METRICS_PORT=9404
CONNECT_METRICS_PORT=9405 # worker N: CONNECT_METRICS_PORT + N - 1
PROMETHEUS_PORT=9090
# Connect workers in the group todos-connect that 'up' starts: 1 (default) or 2
WORKERS=${WORKERS:-1}
[[ "$WORKERS" =~ ^[12]$ ]] || { echo "[stack] ERROR: WORKERS must be 1 or 2, got '$WORKERS'" >&2; exit 2; }
# Kafka nodes: BROKERS=1 (the default) or 3; unset = the running cluster's count (resolve_brokers)
BROKERS_REQ=${BROKERS:-}
[[ -z "$BROKERS_REQ" || "$BROKERS_REQ" =~ ^[13]$ ]] || { echo "[stack] ERROR: BROKERS must be 1 or 3, got '$BROKERS_REQ'" >&2; exit 2; }
BROKERS=${BROKERS_REQ:-1}

DIST_DIR="$STATE_DIR/dist"
CONF_DIR="$STATE_DIR/conf"
KAFKA_LIB="$DIST_DIR/kafka/lib"
PLUGIN_DIR="$DIST_DIR/plugins"
APICURIO_DIST="$DIST_DIR/apicurio"
POM="$REPO_DIR/scripts/stack/pom.xml"
MONITORING_DIR="$REPO_DIR/monitoring"
JMX_DIR="$DIST_DIR/jmx"
JMX_JAR="$JMX_DIR/jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar"
PROMETHEUS_DATA="$STATE_DIR/prometheus"

DEBEZIUM_ARTIFACT="io.debezium:debezium-connector-postgres:$DEBEZIUM_VERSION:tar.gz:plugin"
APICURIO_ARTIFACT="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all"
JMX_ARTIFACT="io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION"
DEBEZIUM_CONNECTOR_CLASS=io.debezium.connector.postgresql.PostgresConnector
CONFIG_PROVIDER_CLASSES=org.apache.kafka.common.config.provider.EnvVarConfigProvider,org.apache.kafka.common.config.provider.FileConfigProvider
# Kafka's SCRAM-SHA-512 users, one per party (topics/acls.yaml says what each may do); each password is
# KAFKA_<NAME>_PASSWORD in .state/env (dashes as underscores). admin is a super user (setup: topics,
# ACLs); the brokers' own principal, User:broker (PLAIN, inter-broker and controller traffic), is the
# other one. todo-api has no Kafka user at all.
KAFKA_USERS=(admin connect notifier analytics example-consumer python-example operator)

# readiness timeouts (seconds); generous for a loaded 2-core CI machine, still bounded
PG_TIMEOUT=${STACK_PG_TIMEOUT:-60}
KAFKA_TIMEOUT=${STACK_KAFKA_TIMEOUT:-120}
APICURIO_TIMEOUT=${STACK_APICURIO_TIMEOUT:-120}
CONNECT_TIMEOUT=${STACK_CONNECT_TIMEOUT:-150}
PROMETHEUS_TIMEOUT=${STACK_PROMETHEUS_TIMEOUT:-60}

usage() {
  awk 'NR == 1 { next } /^# shellcheck/ || !/^#/ { exit } { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

# take the stack lock (install/up/down never run concurrently for one state folder)
lock_stack() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/stack.flock"
  if ! flock -n 9; then
    log "another scripts/stack.sh is running for $STATE_DIR; waiting for it (up to 15 min)..."
    flock -w 900 9 || die "could not take $RUN_DIR/stack.lock"
  fi
}

make_state_dirs() {
  mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR" "$CONF_DIR" "$DIST_DIR"
  # the postgres OS user must be able to traverse .state (and .state/run, .state/logs) when possible
  chmod 755 "$STATE_DIR" "$RUN_DIR" "$LOG_DIR"
}

# ----------------------------------------------------------------------------------------------------
# install
# ----------------------------------------------------------------------------------------------------

_APT_UPDATED=""
apt_update_once() {
  if [[ -z "$_APT_UPDATED" ]]; then
    log "apt-get update..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$LOG_DIR/install.log" 2>&1 ||
      log "apt-get update failed (see $LOG_DIR/install.log); trying with the package lists there are"
    _APT_UPDATED=1
  fi
}

apt_install() {
  apt_update_once
  log "apt-get install $*..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$LOG_DIR/install.log" 2>&1
}

install_system_packages() {
  local need=()
  command -v curl >/dev/null 2>&1 || need+=(curl)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  if [[ ! -x "$PG_BIN/initdb" ]]; then
    need+=(postgresql)
  fi
  # Prometheus and promtool (make test runs promtool test rules). Debian's postinst does not start
  # the packaged service where policy-rc.d forbids it; this stack runs its own instance on loopback.
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    need+=(prometheus)
  fi
  if ((${#need[@]})); then
    [[ $EUID -eq 0 ]] || die "missing ${need[*]}: install them (apt-get install ${need[*]}) or run this as root"
    apt_install "${need[@]}" || { tail -n 20 "$LOG_DIR/install.log" >&2; die "apt-get install ${need[*]} failed"; }
    [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL $PG_MAJOR installed but $PG_BIN/initdb is missing"
    if [[ " ${need[*]} " == *" postgresql "* ]]; then
      disable_debian_cluster
    fi
    if [[ " ${need[*]} " == *" prometheus "* ]]; then
      disable_debian_prometheus
    fi
  fi
  id -u postgres >/dev/null 2>&1 || die "the postgres OS user is missing (it comes with Debian's postgresql package)"
  if ! command -v kcat >/dev/null 2>&1 && [[ $EUID -eq 0 ]]; then
    # nice to have for poking at topics; never fatal
    apt_install kcat || log "kcat is not available here; continuing without it"
  fi
}

# The Debian package creates and starts a cluster "main" on port 5432; this stack runs its own cluster on
# that port, so the package's cluster is stopped and set to manual start (its data is left alone).
disable_debian_cluster() {
  local conf
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  while read -r ver name port status _; do
    [[ "$port" == "$PG_PORT" ]] || continue
    conf="/etc/postgresql/$ver/$name/start.conf"
    if [[ "$status" == online* ]]; then
      log "stopping Debian's PostgreSQL cluster $ver/$name (it holds port $PG_PORT) and setting it to manual start"
      pg_ctlcluster "$ver" "$name" stop -m fast || true
    fi
    [[ -f "$conf" ]] && echo manual >"$conf"
  done < <(pg_lsclusters -h 2>/dev/null || true)
}

# Debian's prometheus package enables a service listening on every interface (:9090): where it was
# started, it is stopped and disabled (this stack's instance binds 127.0.0.1:9090).
disable_debian_prometheus() {
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
}

# mvn_resolve DESCRIPTION ARGS... — runs maven offline first (all cached in ~/.m2: no network), online if that fails.
mvn_resolve() {
  local desc=$1
  shift
  local start
  start=$(now_ms)
  {
    echo "===== $(date -Is) mvn $*"
  } >>"$LOG_DIR/install.log"
  if mvn -B -q -o -f "$POM" "$@" >>"$LOG_DIR/install.log" 2>&1; then
    log "  $desc: done from the ~/.m2 cache in $(elapsed_s "$start")s"
    return 0
  fi
  log "  $desc: not all cached, downloading from Maven Central..."
  if mvn -B -q -f "$POM" "$@" >>"$LOG_DIR/install.log" 2>&1; then
    log "  $desc: done in $(elapsed_s "$start")s"
    return 0
  fi
  tail -n 30 "$LOG_DIR/install.log" >&2
  die "Maven could not resolve $desc (full log: $LOG_DIR/install.log)"
}

pom_stamp() {
  sha256sum "$POM" | cut -c1-16
}

install_kafka() {
  local stamp tmp
  stamp="kafka $KAFKA_VERSION pom $(pom_stamp)"
  if [[ -f "$DIST_DIR/kafka/.complete" && "$(<"$DIST_DIR/kafka/.complete")" == "$stamp" ]]; then
    return 0
  fi
  log "resolving Kafka $KAFKA_VERSION broker, tools and Connect jars with Maven (~55 MB, downloaded once into ~/.m2)..."
  tmp="$DIST_DIR/kafka.tmp"
  rm -rf "$tmp"
  mvn_resolve "Kafka jars" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/lib"
  [[ -f "$tmp/lib/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Kafka jars missing after Maven run"
  rm -rf "$DIST_DIR/kafka"
  mv "$tmp" "$DIST_DIR/kafka"
  echo "$stamp" >"$DIST_DIR/kafka/.complete"
  local jars=("$KAFKA_LIB"/*.jar)
  log "  Kafka: ${#jars[@]} jars, $(du -sh "$KAFKA_LIB" | cut -f1) in ${KAFKA_LIB#"$REPO_DIR"/}"
}

install_debezium() {
  local dest="$PLUGIN_DIR/debezium-connector-postgres" dl="$DIST_DIR/download" tmp
  if [[ -f "$dest/.complete" && "$(<"$dest/.complete")" == "$DEBEZIUM_ARTIFACT" ]]; then
    return 0
  fi
  log "resolving the Debezium PostgreSQL connector $DEBEZIUM_VERSION plugin with Maven (~25 MB, downloaded once into ~/.m2)..."
  rm -rf "$dl"
  mvn_resolve "Debezium plugin" dependency:copy -Dartifact="$DEBEZIUM_ARTIFACT" -DoutputDirectory="$dl"
  tmp="$PLUGIN_DIR/.unpack"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  tar -xzf "$dl"/debezium-connector-postgres-*.tar.gz -C "$tmp"
  [[ -d "$tmp/debezium-connector-postgres" ]] || die "unexpected layout of the Debezium plugin archive"
  rm -rf "$dest"
  mv "$tmp/debezium-connector-postgres" "$dest"
  rm -rf "$tmp" "$dl"
  echo "$DEBEZIUM_ARTIFACT" >"$dest/.complete"
  log "  Debezium: $(du -sh "$dest" | cut -f1) in ${dest#"$REPO_DIR"/}"
}

install_apicurio() {
  local dl="$DIST_DIR/download" tmp="$DIST_DIR/apicurio.tmp"
  if [[ -f "$APICURIO_DIST/.complete" && "$(<"$APICURIO_DIST/.complete")" == "$APICURIO_ARTIFACT" ]]; then
    return 0
  fi
  log "resolving Apicurio Registry $APICURIO_VERSION with Maven (~160 MB, downloaded once into ~/.m2)..."
  rm -rf "$dl"
  mvn_resolve "Apicurio Registry" dependency:copy -Dartifact="$APICURIO_ARTIFACT" -DoutputDirectory="$dl"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  tar -xzf "$dl"/apicurio-registry-app-*.tar.gz -C "$tmp"
  [[ -f "$tmp/quarkus-run.jar" ]] || die "unexpected layout of the Apicurio archive (no quarkus-run.jar)"
  rm -rf "$APICURIO_DIST"
  mv "$tmp" "$APICURIO_DIST"
  rm -rf "$dl"
  echo "$APICURIO_ARTIFACT" >"$APICURIO_DIST/.complete"
  log "  Apicurio: $(du -sh "$APICURIO_DIST" | cut -f1) in ${APICURIO_DIST#"$REPO_DIR"/}"
}

install_jmx_exporter() {
  [[ -f "$JMX_JAR" ]] && return 0
  log "resolving the Prometheus JMX exporter agent $JMX_EXPORTER_VERSION with Maven (~3 MB)..."
  mvn_resolve "JMX exporter" dependency:copy -Dartifact="$JMX_ARTIFACT" -DoutputDirectory="$JMX_DIR"
  [[ -f "$JMX_JAR" ]] || die "the JMX exporter jar is missing after the Maven run"
}

is_installed() {
  [[ -x "$PG_BIN/initdb" ]] &&
    [[ -f "$DIST_DIR/kafka/.complete" && "$(<"$DIST_DIR/kafka/.complete")" == "kafka $KAFKA_VERSION pom $(pom_stamp)" ]] &&
    [[ -f "$PLUGIN_DIR/debezium-connector-postgres/.complete" ]] &&
    [[ "$(<"$PLUGIN_DIR/debezium-connector-postgres/.complete")" == "$DEBEZIUM_ARTIFACT" ]] &&
    [[ -f "$APICURIO_DIST/.complete" && "$(<"$APICURIO_DIST/.complete")" == "$APICURIO_ARTIFACT" ]] &&
    [[ -f "$JMX_JAR" ]] && command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

do_install() {
  local start
  start=$(now_ms)
  make_state_dirs
  install_system_packages
  find_java 17 >/dev/null || die "Kafka, Connect and Debezium need Java 17+"
  install_kafka
  install_debezium
  install_apicurio
  install_jmx_exporter
  find_java 21 >/dev/null || log "WARNING: Apicurio Registry needs Java 21+, none found: 'up' will fail until one is installed"
  log "install complete in $(elapsed_s "$start")s (state: $STATE_DIR)"
}

cmd_install() {
  lock_stack
  do_install
}

# ----------------------------------------------------------------------------------------------------
# .state/env
# ----------------------------------------------------------------------------------------------------

# Decides where PostgreSQL's data, socket and log live. The postgres OS user must be able to reach them:
# under .state when it can traverse the path to it, else under /var/lib/postgresql/todo-cdc/<hash of repo
# path> with symlinks from .state. Sets PGDATA_DIR, PG_SOCKET_DIR, PG_LOG, PG_FALLBACK_BASE, PG_MODE.
pg_layout() {
  local hash
  hash=$(printf '%s' "$REPO_DIR" | sha256sum | cut -c1-12)
  PG_FALLBACK_BASE="/var/lib/postgresql/todo-cdc/$hash"
  if [[ -L "$STATE_DIR/postgres" ]]; then
    PG_MODE=fallback
  elif [[ -d "$STATE_DIR/postgres" ]]; then
    PG_MODE=direct
  elif id -u postgres >/dev/null 2>&1 && [[ -d "$STATE_DIR" ]] &&
    (cd / && runuser -u postgres -- test -x "$STATE_DIR" -a -x "$RUN_DIR" -a -x "$LOG_DIR") 2>/dev/null; then
    PG_MODE=direct
  else
    PG_MODE=fallback
  fi
  if [[ "$PG_MODE" == direct ]]; then
    PGDATA_DIR="$STATE_DIR/postgres"
    PG_SOCKET_DIR="$RUN_DIR/postgres"
    PG_LOG="$LOG_DIR/postgres.log"
    # a unix socket path has a ~107 byte limit
    if ((${#PG_SOCKET_DIR} > 90)); then PG_SOCKET_DIR="$PG_FALLBACK_BASE/run"; fi
  else
    PGDATA_DIR="$PG_FALLBACK_BASE/data"
    PG_SOCKET_DIR="$PG_FALLBACK_BASE/run"
    PG_LOG="$PG_FALLBACK_BASE/postgres.log"
  fi
}

# Creates .state/env on first use (random passwords and JWT secret, generated once) and refreshes the
# values derived from this checkout's location. Keeps any line other engineers added.
ensure_env_file() {
  mkdir -p "$STATE_DIR"
  [[ -f "$ENV_FILE" ]] || { : >"$ENV_FILE"; chmod 600 "$ENV_FILE"; }
  chmod 600 "$ENV_FILE"
  pg_layout
  local todo_pw
  todo_pw=$(env_get TODO_API_DATABASE_URL 2>/dev/null | sed -nE 's#^postgres://todo_api:([^@]+)@.*#\1#p') || true
  [[ -n "$todo_pw" ]] || todo_pw=$(rand_hex 16)
  env_get DEBEZIUM_DB_PASSWORD >/dev/null 2>&1 || env_set DEBEZIUM_DB_PASSWORD "$(rand_hex 16)"
  env_get APICURIO_DB_PASSWORD >/dev/null 2>&1 || env_set APICURIO_DB_PASSWORD "$(rand_hex 16)"
  # the registry's only writer: the operator (pipelinectl schemas register, the stack's global rule);
  # everyone reads anonymously (todo-api's lookups, the consumers' schemas by id)
  env_set SCHEMA_REGISTRY_USERNAME operator
  env_get SCHEMA_REGISTRY_PASSWORD >/dev/null 2>&1 || env_set SCHEMA_REGISTRY_PASSWORD "$(rand_hex 16)"
  env_get JWT_SECRET >/dev/null 2>&1 || env_set JWT_SECRET "$(rand_hex 32)"
  local u
  for u in broker "${KAFKA_USERS[@]}"; do
    env_get "$(kafka_password_var "$u")" >/dev/null 2>&1 || env_set "$(kafka_password_var "$u")" "$(rand_hex 16)"
  done
  # whoever loads .state/env (pipelinectl, make check, kcat hints) acts as the operator; scripts/run.sh
  # applies the ACLs as admin, scripts/services.sh gives each consumer its own user
  env_set KAFKA_SASL_USERNAME operator
  env_set KAFKA_SASL_PASSWORD "$(env_get KAFKA_OPERATOR_PASSWORD)"
  env_set STATE_DIR "$STATE_DIR"
  env_set PGHOST "$HOST"
  env_set PGPORT "$PG_PORT"
  env_set TODO_API_DATABASE_URL "postgres://todo_api:$todo_pw@$HOST:$PG_PORT/todos?sslmode=disable"
  ensure_consumer_db_urls
  env_set DEBEZIUM_DB_USER debezium
  env_set PG_ADMIN_SOCKET_DIR "$PG_SOCKET_DIR"
  env_set KAFKA_BOOTSTRAP_SERVERS "$(kafka_bootstrap)"
  env_set SCHEMA_REGISTRY_URL "http://$HOST:$APICURIO_PORT/apis/ccompat/v7"
  env_set CONNECT_URL "http://$HOST:$CONNECT_PORT"
}

# kafka_password_var USER — the .state/env variable of a Kafka user's password: KAFKA_<USER>_PASSWORD.
kafka_password_var() {
  local v=${1^^}
  echo "KAFKA_${v//-/_}_PASSWORD"
}

# The consumers' roles (notifier, analytics, and example: examples/go-consumer) each own a database of
# the same name (created by scripts/sql/bootstrap.sql; their passwords are generated here).
CONSUMER_ROLES=(notifier analytics example)

ensure_consumer_db_urls() {
  local role var pw
  for role in "${CONSUMER_ROLES[@]}"; do
    var="${role^^}_DATABASE_URL"
    pw=$(env_get "$var" 2>/dev/null | sed -nE "s#^postgres://$role:([^@]+)@.*#\1#p") || true
    [[ -n "$pw" ]] || pw=$(rand_hex 16)
    env_set "$var" "postgres://$role:$pw@$HOST:$PG_PORT/$role?sslmode=disable"
  done
}

cmd_env() {
  if [[ ! -f "$ENV_FILE" ]] || ! env_get JWT_SECRET >/dev/null 2>&1; then
    mkdir -p "$STATE_DIR" "$RUN_DIR"
    make_state_dirs
    resolve_brokers other
    ensure_env_file
  fi
  grep -E '^export [A-Za-z_][A-Za-z0-9_]*=' "$ENV_FILE"
}

# ----------------------------------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------------------------------

as_postgres() {
  (cd / && runuser -u postgres -- "$@")
}

# pg_ctl_detached ARGS... — pg_ctl as the postgres user with every descriptor above 2 closed: the
# postmaster it starts (and each backend it forks) must not inherit a lock the caller holds, such as
# the stack lock or one a caller took with flock(1) around 'make run', which would stay held for as
# long as PostgreSQL runs.
pg_ctl_detached() {
  (
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    as_postgres "$PG_BIN/pg_ctl" "$@"
  )
}

pg_running() {
  [[ -f "$PGDATA_DIR/PG_VERSION" ]] && as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

pg_ready() {
  "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 2
}

# psql as the superuser over the unix socket: pg_psql DB [psql args...] (SQL on stdin)
pg_psql() {
  local db=$1
  shift
  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d "$db" "$@"
}

pg_prepare_dirs() {
  if [[ "$PG_MODE" == fallback ]]; then
    if [[ ! -L "$STATE_DIR/postgres" ]]; then
      log "PostgreSQL: the postgres OS user cannot traverse $STATE_DIR; its data goes to $PGDATA_DIR" \
        "(symlinked from .state/postgres)"
    fi
    mkdir -p "$PG_FALLBACK_BASE"
    chown postgres:postgres "$PG_FALLBACK_BASE"
    chmod 700 "$PG_FALLBACK_BASE"
    printf '%s\n' "$REPO_DIR" >"$PG_FALLBACK_BASE/repo-path"
    ln -sfn "$PGDATA_DIR" "$STATE_DIR/postgres"
    ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"
  fi
  mkdir -p "$PGDATA_DIR" "$PG_SOCKET_DIR"
  chown postgres:postgres "$PGDATA_DIR" "$PG_SOCKET_DIR"
  chmod 700 "$PGDATA_DIR"
  chmod 755 "$PG_SOCKET_DIR"
  touch "$PG_LOG"
  chown postgres:postgres "$PG_LOG"
  chmod 640 "$PG_LOG"
}

pg_init_cluster() {
  [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
  log "PostgreSQL: creating a new cluster in $PGDATA_DIR (initdb)..."
  as_postgres "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 --no-locale \
    --auth-local=peer --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 ||
    { tail -n 20 "$PG_LOG" >&2; die "PostgreSQL: initdb failed"; }
}

pg_write_config() {
  local conf="$PGDATA_DIR/todo-cdc.conf" tmp
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
# written by scripts/stack.sh on every 'up' (edits here are overwritten; use ALTER SYSTEM instead)
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
unix_socket_permissions = 0777
password_encryption = 'scram-sha-256'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_connections = 100
shared_buffers = 128MB
log_line_prefix = '%m [%p] %q%u@%d '
log_connections = off
log_min_messages = warning
EOF
  install -o postgres -g postgres -m 600 "$tmp" "$conf"
  rm -f "$tmp"
  if ! grep -q "^include_if_exists = 'todo-cdc.conf'" "$PGDATA_DIR/postgresql.conf"; then
    printf "\n# local stack settings (scripts/stack.sh)\ninclude_if_exists = 'todo-cdc.conf'\n" >>"$PGDATA_DIR/postgresql.conf"
  fi
}

start_postgres() {
  local start
  start=$(now_ms)
  pg_prepare_dirs
  pg_init_cluster
  pg_write_config
  if pg_running; then
    pg_ready || wait_until "PostgreSQL" "$PG_TIMEOUT" "$PG_LOG" pg_ready || die "PostgreSQL is running but does not answer"
    pg_setup
    printf '%-10s up    %-28s already running\n' postgres "$HOST:$PG_PORT"
    return 0
  fi
  if port_open "$HOST" "$PG_PORT"; then
    die "PostgreSQL: port $PG_PORT is already taken by $(port_owner "$PG_PORT"), not by this checkout's cluster" \
      "($PGDATA_DIR). Stop it (another checkout: its scripts/stack.sh down; Debian's cluster:" \
      "pg_ctlcluster $PG_MAJOR main stop) and run 'up' again."
  fi
  pg_ctl_detached -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$PG_TIMEOUT" start >/dev/null 2>&1 ||
    { tail -n 30 "$PG_LOG" >&2; die "PostgreSQL failed to start (log: $PG_LOG)"; }
  wait_until "PostgreSQL" "$PG_TIMEOUT" "$PG_LOG" pg_ready || die "PostgreSQL does not answer (log: $PG_LOG)"
  pg_setup
  printf '%-10s up    %-28s started in %ss\n' postgres "$HOST:$PG_PORT" "$(elapsed_s "$start")"
}

# Roles, databases, grants and the replication slot (scripts/sql/bootstrap.sql, shared with
# docker/postgres/init.sh); idempotent, run on every 'up'. Passwords are hex and travel on stdin as psql
# variables, never on a command line.
pg_setup() {
  local todo_pw dbz_pw api_pw notifier_pw analytics_pw example_pw
  todo_pw=$(env_get TODO_API_DATABASE_URL | sed -nE 's#^postgres://todo_api:([^@]+)@.*#\1#p')
  dbz_pw=$(env_get DEBEZIUM_DB_PASSWORD)
  api_pw=$(env_get APICURIO_DB_PASSWORD)
  notifier_pw=$(env_get NOTIFIER_DATABASE_URL | sed -nE 's#^postgres://notifier:([^@]+)@.*#\1#p')
  analytics_pw=$(env_get ANALYTICS_DATABASE_URL | sed -nE 's#^postgres://analytics:([^@]+)@.*#\1#p')
  example_pw=$(env_get EXAMPLE_DATABASE_URL | sed -nE 's#^postgres://example:([^@]+)@.*#\1#p')
  [[ -n "$todo_pw" && -n "$dbz_pw" && -n "$api_pw" && -n "$notifier_pw" && -n "$analytics_pw" && -n "$example_pw" ]] ||
    die "passwords missing from $ENV_FILE"
  {
    printf '\\set %s %s\n' todo_pw "$todo_pw" dbz_pw "$dbz_pw" api_pw "$api_pw" \
      notifier_pw "$notifier_pw" analytics_pw "$analytics_pw" example_pw "$example_pw"
    cat "$REPO_DIR/scripts/sql/bootstrap.sql"
  } | pg_psql postgres >>"$PG_LOG" 2>&1 ||
    { tail -n 20 "$PG_LOG" >&2; die "PostgreSQL: the bootstrap (scripts/sql/bootstrap.sql) failed"; }
}

stop_postgres() {
  if ! pg_running; then
    printf '%-10s down  %-28s was not running\n' postgres "$HOST:$PG_PORT"
    return 0
  fi
  local start
  start=$(now_ms)
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null 2>&1; then
    log "PostgreSQL did not stop within 60s in fast mode; stopping in immediate mode (crash recovery at next start)"
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || die "PostgreSQL could not be stopped"
  fi
  printf '%-10s down  %-28s stopped in %ss\n' postgres "$HOST:$PG_PORT" "$(elapsed_s "$start")"
}

# ----------------------------------------------------------------------------------------------------
# Kafka (KRaft, one combined broker + controller)
# ----------------------------------------------------------------------------------------------------

write_log4j2() { # write_log4j2 FILE LOGFILE
  cat >"$1" <<EOF
# written by scripts/stack.sh on every 'up'
status = warn
name = stack
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $2
appender.file.filePattern = $2.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 5
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.reflections.name = org.reflections
logger.reflections.level = error
logger.zk.name = org.apache.zookeeper
logger.zk.level = warn
EOF
}

# jmx_agent CONFIG PORT — the -javaagent option that serves the JVM's MBeans as Prometheus metrics on
# $HOST:PORT, by the rules of monitoring/jmx/CONFIG.yml (copied to .state/conf: a running JVM does not
# depend on the checkout it was started from).
jmx_agent() {
  local conf="$CONF_DIR/jmx-$1.yml"
  [[ -f "$JMX_JAR" ]] || install_jmx_exporter
  cp "$MONITORING_DIR/jmx/$1.yml" "$conf"
  printf -- '-javaagent:%s=%s:%s:%s' "$JMX_JAR" "$HOST" "$2" "$conf"
}

# Node N (1..3) of the Kafka cluster: node 1 is "kafka" on $KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT),
# nodes 2 and 3 (BROKERS=3 only) are "kafka2"/"kafka3" on the next port pairs (9094/9095, 9096/9097);
# JMX exporter: node 1 $KAFKA_METRICS_PORT, nodes 2 and 3 on 9407/9408 (9405/9406 are Connect's).
kafka_name() { if [[ "${1:-1}" == 1 ]]; then echo kafka; else echo "kafka$1"; fi; }
kafka_port() { echo $((KAFKA_PORT + 2 * (${1:-1} - 1))); }
kafka_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 2 * (${1:-1} - 1))); }
kafka_metrics_port() { if [[ "${1:-1}" == 1 ]]; then echo "$KAFKA_METRICS_PORT"; else echo $((KAFKA_METRICS_PORT + 1 + ${1:-1})); fi; }
# the cluster's folder: one broker keeps .state/kafka (unchanged); three brokers are another cluster with
# its own id and data in .state/kafka3/nodeN (switching BROKERS switches clusters: topics, offsets and
# Connect's state of the other one are kept but not shared)
kafka_base() { if ((BROKERS == 1)); then echo "$STATE_DIR/kafka"; else echo "$STATE_DIR/kafka3"; fi; }
kafka_data() { if ((BROKERS == 1)); then echo "$STATE_DIR/kafka/data"; else echo "$STATE_DIR/kafka3/node${1:-1}/data"; fi; }
kafka_conf() { if ((BROKERS == 1)); then echo "$CONF_DIR/server.properties"; else echo "$CONF_DIR/kafka3-node${1:-1}.properties"; fi; }
# every broker address of the cluster, comma-separated (the clients' bootstrap list)
kafka_bootstrap() {
  local n list=""
  for ((n = 1; n <= BROKERS; n++)); do list+="${list:+,}$HOST:$(kafka_port "$n")"; done
  echo "$list"
}

# The broker count of the running cluster ($RUN_DIR/kafka.brokers, written when node 1 starts), or
# nothing when Kafka is down.
running_brokers() {
  is_running kafka || is_running kafka2 || is_running kafka3 || return 1
  last_brokers
}

# The broker count of the cluster started last (1 when none was).
last_brokers() {
  local b=""
  [[ -s "$RUN_DIR/kafka.brokers" ]] && b=$(<"$RUN_DIR/kafka.brokers")
  [[ "$b" =~ ^[13]$ ]] && echo "$b" || echo 1
}

# resolve_brokers up|other — sets BROKERS: the requested count (BROKERS=1|3), else the running
# cluster's; when Kafka is down, 1 for 'up' (the default) and the last started cluster's for the other
# commands (start kafka after stop kafka, status, down). For 'up', a request that differs from the
# running cluster is refused: the clusters do not share data, and what runs against one must stop first.
resolve_brokers() {
  local running
  running=$(running_brokers) || running=""
  if [[ -n "$BROKERS_REQ" ]]; then
    if [[ "$1" == up && -n "$running" && "$running" != "$BROKERS_REQ" ]]; then
      die "Kafka runs with $running broker(s), BROKERS=$BROKERS_REQ asks for another cluster: 'make down' first" \
        "(all data of both clusters is kept), then 'make run BROKERS=$BROKERS_REQ'"
    fi
    BROKERS=$BROKERS_REQ
  elif [[ -n "$running" ]]; then
    BROKERS=$running
  elif [[ "$1" == up ]]; then
    BROKERS=1
  else
    BROKERS=$(last_brokers)
  fi
}

# The brokers' security settings (in every node's server.properties): clients authenticate with
# SASL/SCRAM-SHA-512 on the CLIENT listener (SASL_PLAINTEXT: 127.0.0.1 only; production adds TLS, i.e.
# SASL_SSL); the nodes among themselves (inter-broker on CLIENT, and the CONTROLLER listener) as User:broker
# with SASL/PLAIN, whose password is in this file (not in the cluster's metadata, where SCRAM users live and
# which a controller cannot read before it authenticates). The StandardAuthorizer refuses whatever
# topics/acls.yaml does not grant; User:broker and User:admin are super users.
kafka_security_config() {
  local pw plain
  pw=$(env_get KAFKA_BROKER_PASSWORD) || die "no KAFKA_BROKER_PASSWORD in $ENV_FILE"
  plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"$pw\" user_broker=\"$pw\";"
  cat <<EOF
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.client.plain.sasl.jaas.config=$plain
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain
sasl.mechanism.controller.protocol=PLAIN
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
EOF
}

# The Kafka tools' client settings (mode 600: they hold passwords): tools-admin.properties as User:admin
# (scripts/kafka.sh, make kafka), tools-broker.properties as User:broker (this script's own checks, and the
# SCRAM users it creates before any of them exists).
write_kafka_tools_config() { # write_kafka_tools_config BOOTSTRAP
  local admin broker
  admin="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(env_get KAFKA_ADMIN_PASSWORD)\";"
  broker="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"$(env_get KAFKA_BROKER_PASSWORD)\";"
  (
    umask 077
    printf 'bootstrap.servers=%s\nrequest.timeout.ms=5000\ndefault.api.timeout.ms=10000\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=%s\nsasl.jaas.config=%s\n' \
      "$1" SCRAM-SHA-512 "$admin" >"$CONF_DIR/tools-admin.properties"
    printf 'bootstrap.servers=%s\nrequest.timeout.ms=5000\ndefault.api.timeout.ms=10000\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=%s\nsasl.jaas.config=%s\n' \
      "$1" PLAIN "$broker" >"$CONF_DIR/tools-broker.properties"
  )
  chmod 600 "$CONF_DIR/tools-admin.properties" "$CONF_DIR/tools-broker.properties"
}

# kafka_ensure_users — creates the SCRAM users of KAFKA_USERS that the cluster lacks (as User:broker),
# each with its password from .state/env: on a new cluster all of them, on an existing one none (or those
# added to KAFKA_USERS since). A password goes through a mode-600 file, never a command line.
kafka_ensure_users() {
  local have u f missing=()
  have=$(kafka_class kafka.admin.ConfigCommand --bootstrap-server "$(kafka_bootstrap)" --command-config "$CONF_DIR/tools-broker.properties" \
    --describe --entity-type users 2>>"$LOG_DIR/kafka.out") || die "Kafka: could not list the SCRAM users (see $LOG_DIR/kafka.out)"
  for u in "${KAFKA_USERS[@]}"; do
    grep -q "user-principal '$u' are SCRAM-SHA-512" <<<"$have" || missing+=("$u")
  done
  ((${#missing[@]})) || return 0
  f=$(umask 077 && mktemp "$CONF_DIR/scram.XXXXXX")
  for u in "${missing[@]}"; do
    printf 'SCRAM-SHA-512=password=%s\n' "$(env_get "$(kafka_password_var "$u")")" >"$f"
    kafka_class kafka.admin.ConfigCommand --bootstrap-server "$(kafka_bootstrap)" --command-config "$CONF_DIR/tools-broker.properties" \
      --alter --add-config-file "$f" --entity-type users --entity-name "$u" >>"$LOG_DIR/kafka.out" 2>&1 ||
      { rm -f "$f"; die "Kafka: could not create the SCRAM user $u (see $LOG_DIR/kafka.out)"; }
  done
  rm -f "$f"
  log "Kafka: SCRAM users created: ${missing[*]}"
}

write_kafka_config() { # write_kafka_config N
  local n=${1:-1} rf=1 isr=1 voters="" i
  ((BROKERS == 3)) && { rf=3; isr=2; }
  for ((i = 1; i <= BROKERS; i++)); do voters+="${voters:+,}$i@$HOST:$(kafka_controller_port "$i")"; done
  mkdir -p "$(kafka_data "$n")" "$CONF_DIR"
  (
    umask 077 # holds User:broker's password
    cat >"$(kafka_conf "$n")" <<EOF2
# written by scripts/stack.sh on every 'up' (edits here are overwritten)
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=CLIENT://$HOST:$(kafka_port "$n"),CONTROLLER://$HOST:$(kafka_controller_port "$n")
advertised.listeners=CLIENT://$HOST:$(kafka_port "$n")
$(kafka_security_config)
log.dirs=$(kafka_data "$n")
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
auto.create.topics.enable=false
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=268435456
EOF2
  )
  chmod 600 "$(kafka_conf "$n")"
  write_log4j2 "$CONF_DIR/$(kafka_name "$n")-log4j2.properties" "$LOG_DIR/$(kafka_name "$n").log"
  write_kafka_tools_config "$(kafka_bootstrap)"
}

kafka_format() { # kafka_format N
  local n=${1:-1} cid base
  base=$(kafka_base)
  [[ -f "$(kafka_data "$n")/meta.properties" ]] && return 0
  mkdir -p "$base"
  if [[ -s "$base/cluster.id" ]]; then
    cid=$(<"$base/cluster.id")
  else
    cid=$(kafka_class kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/kafka.out" | tail -n 1)
    [[ -n "$cid" ]] || die "Kafka: could not generate a cluster id (see $LOG_DIR/kafka.out)"
    printf '%s\n' "$cid" >"$base/cluster.id"
  fi
  log "Kafka: formatting $(kafka_data "$n") (cluster id $cid, node $n of $BROKERS)..."
  # controller.quorum.voters (static quorum) goes with a format without --standalone
  kafka_class kafka.tools.StorageTool format -t "$cid" -c "$(kafka_conf "$n")" >>"$LOG_DIR/kafka.out" 2>&1 ||
    { tail -n 20 "$LOG_DIR/kafka.out" >&2; die "Kafka: storage format of node $n failed"; }
}

# ready = the node's Admin API answers a metadata request (lists topics)
# shellcheck disable=SC2016 # the single-quoted script is expanded by the inner bash
kafka_ready() { # kafka_ready [N]
  local port
  port=$(kafka_port "${1:-1}")
  port_open "$HOST" "$port" &&
    timeout 30 bash -c '. "$1"; kafka_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$2" --command-config "$3" --list' \
      _ "$REPO_DIR/scripts/lib.sh" "$HOST:$port" "$CONF_DIR/tools-broker.properties"
}

# kafka_apply_acls — the ACLs of topics/acls.yaml (and e2e/acls.yaml: the tests' own connectors on this
# stack), applied as User:admin with `pipelinectl acls apply` before any other party connects (Connect
# starts next and finds nothing it may use without them). Builds bin/pipelinectl when it is missing or
# has no acls command yet (`make up` without `make build`).
kafka_apply_acls() {
  local ctl="$REPO_DIR/bin/pipelinectl" out
  if ! "$ctl" acls apply --help >/dev/null 2>&1; then
    log "building bin/pipelinectl (it applies the Kafka ACLs)"
    (cd "$REPO_DIR" && go build -o bin/ ./services/pipelinectl) || die "could not build bin/pipelinectl"
  fi
  out=$(cd "$REPO_DIR" && KAFKA_BOOTSTRAP_SERVERS="$(kafka_bootstrap)" KAFKA_SASL_USERNAME=admin \
    KAFKA_SASL_PASSWORD="$(env_get KAFKA_ADMIN_PASSWORD)" "$ctl" acls apply -f topics/acls.yaml -f e2e/acls.yaml 2>&1) ||
    { printf '%s\n' "$out" >&2; die "Kafka: applying the ACLs failed"; }
  log "Kafka ACLs: ${out##*$'\n'}"
}

# conf_changed NAME FILE — true when NAME runs and was not started by this script with the FILE written
# now ($RUN_DIR/NAME.conf: the pid and the file's sha256, written by conf_started): e.g. a Kafka from
# before SASL, which must restart to require it, or one another checkout restarted with its own config.
conf_changed() {
  is_running "$1" || return 1
  [[ "$(cat "$RUN_DIR/$1.conf" 2>/dev/null)" != "$(conf_stamp "$1" "$2")" ]]
}
conf_started() { conf_stamp "$1" "$2" >"$RUN_DIR/$1.conf"; }
conf_stamp() { printf '%s %s\n' "$(pid_of "$1")" "$(sha256sum <"$2" | awk '{ print $1 }')"; }

# launch_kafka_node N — starts node N's JVM unless it runs (returns at once; kafka_ready says when it
# serves: with three nodes, none serves before two of them form the quorum).
launch_kafka_node() {
  local n=$1 java p name
  name=$(kafka_name "$n")
  write_kafka_config "$n"
  is_running "$name" && return 0
  for p in "$(kafka_port "$n")" "$(kafka_controller_port "$n")"; do
    if port_open "$HOST" "$p"; then die "Kafka node $n: port $p is already taken by $(port_owner "$p") (not started by this stack)"; fi
  done
  java=$(find_java 17) || die "Kafka needs Java 17+"
  kafka_format "$n"
  if [[ "$n" == 1 ]]; then
    # another cluster than last time: the connectors' offsets stored in this one are older than their
    # replication slots (scripts/run.sh starts them from the slot; this marker tells it to)
    if [[ -s "$RUN_DIR/kafka.brokers" && "$(last_brokers)" != "$BROKERS" ]]; then : >"$RUN_DIR/kafka.switched"; fi
    printf '%s\n' "$BROKERS" >"$RUN_DIR/kafka.brokers"
  fi
  start_bg "$name" "$LOG_DIR/$name.out" env -i -C "$(dirname "$(kafka_data "$n")")" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" LANG=C.UTF-8 \
    "$java" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    "$(jmx_agent kafka "$(kafka_metrics_port "$n")")" \
    -Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR" \
    -Dlog4j2.configurationFile="$CONF_DIR/$name-log4j2.properties" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$(kafka_conf "$n")" ||
    die "Kafka node $n failed to start (logs: $LOG_DIR/$name.log, $LOG_DIR/$name.out)"
  STARTED_KAFKA+=("$n")
}

# start_kafka [N] — starts every node of the cluster (BROKERS of them), or node N alone, and waits
# until each serves.
start_kafka() {
  local start n name nodes
  start=$(now_ms)
  STARTED_KAFKA=()
  if [[ -n "${1:-}" ]]; then nodes=("$1"); else mapfile -t nodes < <(seq 1 "$BROKERS"); fi
  # a node running with another config than this checkout writes (e.g. from before SASL) restarts; the
  # nodes stop together, as stop_kafka does (a quorum cannot shut down one node after the other)
  for n in "${nodes[@]}"; do
    write_kafka_config "$n"
    if conf_changed "$(kafka_name "$n")" "$(kafka_conf "$n")"; then
      log "Kafka runs with another $(basename "$(kafka_conf "$n")") than this checkout writes: restarting it"
      stop_kafka "${1:-}"
      break
    fi
  done
  for n in "${nodes[@]}"; do launch_kafka_node "$n"; done
  for n in "${nodes[@]}"; do
    name=$(kafka_name "$n")
    if ! wait_ready "$name" "Kafka node $n" "$KAFKA_TIMEOUT" "$LOG_DIR/$name.log" kafka_ready "$n"; then
      tail -n 10 "$LOG_DIR/$name.out" >&2
      die "Kafka node $n did not become ready (logs: $LOG_DIR/$name.log, $LOG_DIR/$name.out)"
    fi
    if [[ " ${STARTED_KAFKA[*]} " == *" $n "* ]]; then
      printf '%-10s up    %-28s started in %ss\n' "$name" "$HOST:$(kafka_port "$n")" "$(elapsed_s "$start")"
    else
      printf '%-10s up    %-28s already running\n' "$name" "$HOST:$(kafka_port "$n")"
    fi
    conf_started "$name" "$(kafka_conf "$n")"
  done
  kafka_ensure_users
  write_kafka_targets
}

# stop_kafka [N] — stops node N, or every node that runs: all at once (SIGTERM together), since the last
# nodes of a three-node quorum cannot finish a controlled shutdown one after the other.
stop_kafka() {
  local n pids=()
  if [[ -n "${1:-}" ]]; then
    stop_component "$(kafka_name "$1")" "$HOST:$(kafka_port "$1")" 120
  else
    for n in 3 2 1; do
      stop_component "$(kafka_name "$n")" "$HOST:$(kafka_port "$n")" 120 &
      pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || die "Kafka could not be stopped"; done
  fi
  write_kafka_targets
}

# The Kafka nodes Prometheus scrapes (file_sd, like the Connect workers): every running one.
write_kafka_targets() {
  local dir="$CONF_DIR/prometheus" n targets=""
  mkdir -p "$dir"
  for n in 1 2 3; do
    if is_running "$(kafka_name "$n")"; then
      targets+="${targets:+, }\"$HOST:$(kafka_metrics_port "$n")\""
    fi
  done
  printf '[{"targets": [%s]}]\n' "$targets" >"$dir/kafka-targets.json.tmp"
  mv "$dir/kafka-targets.json.tmp" "$dir/kafka-targets.json"
}

# ----------------------------------------------------------------------------------------------------
# Apicurio Registry (SQL storage in PostgreSQL database "registry")
# ----------------------------------------------------------------------------------------------------

write_apicurio_config() {
  local dir="$STATE_DIR/apicurio" pw reg_pw
  pw=$(env_get APICURIO_DB_PASSWORD)
  reg_pw=$(env_get SCHEMA_REGISTRY_PASSWORD) || die "no SCHEMA_REGISTRY_PASSWORD in $ENV_FILE"
  mkdir -p "$dir/config" "$dir/tmp"
  # Quarkus reads ./config/application.properties from its working directory (mode 600: holds a password)
  (
    umask 077
    cat >"$dir/config/application.properties" <<EOF
# written by scripts/stack.sh on every 'up' (edits here are overwritten)
quarkus.http.host=$HOST
quarkus.http.port=$APICURIO_PORT
quarkus.management.host=$HOST
quarkus.management.port=$APICURIO_MGMT_PORT
apicurio.storage.kind=sql
apicurio.storage.sql.kind=postgresql
apicurio.datasource.url=jdbc:postgresql://$HOST:$PG_PORT/registry
apicurio.datasource.username=apicurio
apicurio.datasource.password=$pw
apicurio.datasource.jdbc.initial-size=2
apicurio.datasource.jdbc.min-size=2
apicurio.datasource.jdbc.max-size=10
# default global rule (applies while no global rule was set through the REST API)
apicurio.rules.global.compatibility=BACKWARD
# local development: let developers delete test subjects / versions through the ccompat API
apicurio.rest.deletion.artifact.enabled=true
apicurio.rest.deletion.artifact-version.enabled=true
# writes (new schemas, rules and configs, deletes) by the operator only, HTTP basic against Quarkus'
# embedded users (no identity provider needed), reads for anyone: role-based authorization with
# anonymous reads. Checked: anonymous POST/PUT/DELETE answer 401, the operator (sr-admin) 200.
apicurio.authn.enabled=true
quarkus.oidc.tenant-enabled=false
quarkus.http.auth.basic=true
quarkus.security.users.embedded.enabled=true
quarkus.security.users.embedded.plain-text=true
quarkus.security.users.embedded.users.operator=$reg_pw
quarkus.security.users.embedded.roles.operator=sr-admin
apicurio.auth.role-based-authorization=true
apicurio.auth.role-source=token
apicurio.auth.anonymous-read-access.enabled=true
# the packaged log format prints a broken date (YYYY-MMx-dd)
quarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %p [%c{3.}] (%t) %m%n
apicurio.storage.snapshot.location=$dir/tmp
apicurio.import.work-dir=$dir/tmp
EOF
  )
}

apicurio_ready() {
  http_ok "http://$HOST:$APICURIO_PORT/apis/ccompat/v7/subjects"
}

# The global compatibility rule must be BACKWARD or stricter; if none is in force, set BACKWARD via REST.
apicurio_check_rule() {
  local level
  level=$(curl -fsS --max-time 5 "http://$HOST:$APICURIO_PORT/apis/ccompat/v7/config" |
    sed -nE 's/.*"compatibilityLevel" *: *"([A-Z_]+)".*/\1/p') || level=""
  case "$level" in
  BACKWARD | BACKWARD_TRANSITIVE | FULL | FULL_TRANSITIVE) return 0 ;;
  esac
  log "Apicurio: global compatibility is '${level:-unknown}'; setting BACKWARD"
  # as the operator, the credentials through curl's config on stdin (never on a command line)
  printf 'user = "%s:%s"\n' "$(env_get SCHEMA_REGISTRY_USERNAME)" "$(env_get SCHEMA_REGISTRY_PASSWORD)" |
    curl -K - -fsS --max-time 5 -X PUT -H 'Content-Type: application/json' \
    -d '{"compatibility":"BACKWARD"}' "http://$HOST:$APICURIO_PORT/apis/ccompat/v7/config" >/dev/null ||
    die "Apicurio: could not set the global compatibility rule"
}

start_apicurio() {
  local start java p
  start=$(now_ms)
  write_apicurio_config
  if conf_changed apicurio "$STATE_DIR/apicurio/config/application.properties"; then
    log "Apicurio runs with another application.properties than this checkout writes: restarting it"
    stop_component apicurio "$HOST:$APICURIO_PORT" 30
  fi
  if is_running apicurio; then
    wait_until "Apicurio" "$APICURIO_TIMEOUT" "$LOG_DIR/apicurio.log" apicurio_ready ||
      die "Apicurio is running (pid $(pid_of apicurio)) but does not answer"
    apicurio_check_rule
    printf '%-10s up    %-28s already running\n' apicurio "$HOST:$APICURIO_PORT"
    return 0
  fi
  for p in "$APICURIO_PORT" "$APICURIO_MGMT_PORT"; do
    if port_open "$HOST" "$p"; then die "Apicurio: port $p is already taken by $(port_owner "$p") (not started by this stack)"; fi
  done
  java=$(find_java 21) || die "Apicurio Registry $APICURIO_VERSION needs a JDK 21 or newer: install one (e.g. Temurin 21+ under /usr/lib/jvm) or set JAVA_HOME"
  start_bg apicurio "$LOG_DIR/apicurio.log" env -i -C "$STATE_DIR/apicurio" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" LANG=C.UTF-8 \
    "$java" -Xms128m -Xmx512m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Djava.io.tmpdir="$STATE_DIR/apicurio/tmp" \
    -jar "$APICURIO_DIST/quarkus-run.jar" || die "Apicurio failed to start (log: $LOG_DIR/apicurio.log)"
  wait_ready apicurio "Apicurio" "$APICURIO_TIMEOUT" "$LOG_DIR/apicurio.log" apicurio_ready ||
    die "Apicurio did not become ready (log: $LOG_DIR/apicurio.log)"
  conf_started apicurio "$STATE_DIR/apicurio/config/application.properties"
  apicurio_check_rule
  printf '%-10s up    %-28s started in %ss\n' apicurio "$HOST:$APICURIO_PORT" "$(elapsed_s "$start")"
}

# ----------------------------------------------------------------------------------------------------
# Kafka Connect (distributed, one worker) with the Debezium PostgreSQL plugin
# ----------------------------------------------------------------------------------------------------

# Worker N (1 or 2) of the Connect group "todos-connect": worker 1 is "connect" on $CONNECT_PORT,
# worker 2 is "connect2" on the next port (WORKERS=2). Both share the group and its internal topics.
connect_name() { if [[ "${1:-1}" == 1 ]]; then echo connect; else echo "connect$1"; fi; }
connect_port() { echo $((CONNECT_PORT + ${1:-1} - 1)); }
connect_metrics_port() { echo $((CONNECT_METRICS_PORT + ${1:-1} - 1)); }

write_connect_config() { # write_connect_config [N]
  local n=${1:-1} secrets="$STATE_DIR/connect/secrets" name port
  name=$(connect_name "$n")
  port=$(connect_port "$n")
  mkdir -p "$secrets" "$STATE_DIR/$name"
  chmod 700 "$STATE_DIR/connect" "$secrets" "$STATE_DIR/$name"
  # for connector configs that prefer ${file:...:DEBEZIUM_DB_PASSWORD} over ${env:DEBEZIUM_DB_PASSWORD}
  (
    umask 077
    printf 'DEBEZIUM_DB_USER=%s\nDEBEZIUM_DB_PASSWORD=%s\n' "$(env_get DEBEZIUM_DB_USER)" "$(env_get DEBEZIUM_DB_PASSWORD)" \
      >"$secrets/debezium.properties"
    # the worker's own Kafka password (User:connect), read by the FileConfigProvider: never in a config
    printf 'KAFKA_CONNECT_PASSWORD=%s\n' "$(env_get KAFKA_CONNECT_PASSWORD)" >"$secrets/kafka.properties"
  )
  cat >"$CONF_DIR/$name.properties" <<EOF
# written by scripts/stack.sh on every 'up' (edits here are overwritten)
bootstrap.servers=$(kafka_bootstrap)
# Kafka as User:connect (topics/acls.yaml): the worker's own clients and, by the prefixes, the tasks'
# producers and consumers and the admin client; the password comes from a mode-600 file in $secrets
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="\${file:$secrets/kafka.properties:KAFKA_CONNECT_PASSWORD}";
producer.security.protocol=SASL_PLAINTEXT
producer.sasl.mechanism=SCRAM-SHA-512
producer.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="\${file:$secrets/kafka.properties:KAFKA_CONNECT_PASSWORD}";
consumer.security.protocol=SASL_PLAINTEXT
consumer.sasl.mechanism=SCRAM-SHA-512
consumer.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="\${file:$secrets/kafka.properties:KAFKA_CONNECT_PASSWORD}";
admin.security.protocol=SASL_PLAINTEXT
admin.sasl.mechanism=SCRAM-SHA-512
admin.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="\${file:$secrets/kafka.properties:KAFKA_CONNECT_PASSWORD}";
group.id=todos-connect
config.storage.topic=connect-configs
offset.storage.topic=connect-offsets
status.storage.topic=connect-status
# one per broker (min.insync.replicas comes from the brokers' default: 2 with three)
config.storage.replication.factor=$BROKERS
offset.storage.replication.factor=$BROKERS
status.storage.replication.factor=$BROKERS
offset.flush.interval.ms=1000
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
plugin.path=$PLUGIN_DIR
# every plugin here (Debezium 3.6.1, Kafka's own transforms/converters) ships ServiceLoader manifests:
# service_load skips the slow reflective scan (~4 s). A plugin without manifests needs hybrid_warn.
plugin.discovery=service_load
# REST on loopback only: whoever reaches this API can create connectors and read their configs
listeners=http://$HOST:$port
rest.advertised.host.name=$HOST
rest.advertised.port=$port
rest.advertised.listener=http
connector.client.config.override.policy=None
# a worker that dies has its connectors and tasks reassigned at the next rebalance instead of after
# the default 5 min grace period of incremental cooperative rebalancing
scheduled.rebalance.max.delay.ms=0
# Exactly-once source support (KIP-618): connectors may set exactly.once.support=required and
# transaction.boundary=poll; after a worker crash the new worker waits at most the producer transaction
# timeout for the dead task's open transaction (10 s here instead of 60 s). With three brokers, 30 s: a
# SIGKILLed node that led partitions and the quorum held the task's transaction ~13 s, and a transaction
# that expires fails the task for good (make chaos BROKERS=3, kafka3-kill-controller)
exactly.once.source.support=enabled
producer.transaction.timeout.ms=$(((BROKERS == 3) ? 30000 : 10000))
# secrets in connector configs: \${env:DEBEZIUM_DB_PASSWORD} (the worker's environment holds DEBEZIUM_* only)
# or \${file:$secrets/debezium.properties:DEBEZIUM_DB_PASSWORD}
config.providers=env,file
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
config.providers.env.param.allowlist.pattern=^DEBEZIUM_.*
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
config.providers.file.param.allowed.paths=$secrets
EOF
  write_log4j2 "$CONF_DIR/$name-log4j2.properties" "$LOG_DIR/$name.log"
}

connect_ready() { # connect_ready [N]
  curl -fsS --max-time 3 "http://$HOST:$(connect_port "${1:-1}")/connector-plugins" 2>/dev/null | grep -q "$DEBEZIUM_CONNECTOR_CLASS"
}

start_connect() { # start_connect [N]
  local n=${1:-1} start java name port
  name=$(connect_name "$n")
  port=$(connect_port "$n")
  start=$(now_ms)
  write_connect_config "$n"
  if conf_changed "$name" "$CONF_DIR/$name.properties"; then
    log "Kafka Connect worker $n runs with another $name.properties than this checkout writes: restarting it"
    stop_component "$name" "$HOST:$port" 60
  fi
  if is_running "$name"; then
    wait_until "Kafka Connect worker $n" "$CONNECT_TIMEOUT" "$LOG_DIR/$name.log" connect_ready "$n" ||
      die "Kafka Connect worker $n is running (pid $(pid_of "$name")) but does not answer"
    printf '%-10s up    %-28s already running\n' "$name" "$HOST:$port"
    return 0
  fi
  if port_open "$HOST" "$port"; then
    die "Kafka Connect worker $n: port $port is already taken by $(port_owner "$port") (not started by this stack)"
  fi
  java=$(find_java 17) || die "Kafka Connect needs Java 17+"
  # a clean environment: the worker sees the Debezium credentials and nothing else of ours. They are
  # exported in a subshell that dropped every other variable (like `env -i`), never put on a command
  # line, where `ps` would show them.
  local dbz_user dbz_pw home=${HOME:-/root}
  dbz_user=$(env_get DEBEZIUM_DB_USER) || die "no DEBEZIUM_DB_USER in $ENV_FILE"
  dbz_pw=$(env_get DEBEZIUM_DB_PASSWORD) || die "no DEBEZIUM_DB_PASSWORD in $ENV_FILE"
  (
    cd "$STATE_DIR/$name" || exit 1
    for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" LANG=C.UTF-8
    export DEBEZIUM_DB_USER="$dbz_user" DEBEZIUM_DB_PASSWORD="$dbz_pw"
    start_bg "$name" "$LOG_DIR/$name.out" \
      "$java" -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
      "$(jmx_agent connect "$(connect_metrics_port "$n")")" \
      -Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR" \
      -Dlog4j2.configurationFile="$CONF_DIR/$name-log4j2.properties" \
      -Dorg.apache.kafka.automatic.config.providers="$CONFIG_PROVIDER_CLASSES" \
      -cp "$KAFKA_LIB/*" org.apache.kafka.connect.cli.ConnectDistributed "$CONF_DIR/$name.properties"
  ) || die "Kafka Connect worker $n failed to start (logs: $LOG_DIR/$name.log, $LOG_DIR/$name.out)"
  if ! wait_ready "$name" "Kafka Connect worker $n" "$CONNECT_TIMEOUT" "$LOG_DIR/$name.log" connect_ready "$n"; then
    tail -n 10 "$LOG_DIR/$name.out" >&2
    die "Kafka Connect worker $n did not become ready (logs: $LOG_DIR/$name.log, $LOG_DIR/$name.out)"
  fi
  conf_started "$name" "$CONF_DIR/$name.properties"
  write_connect_targets
  printf '%-10s up    %-28s started in %ss\n' "$name" "$HOST:$port" "$(elapsed_s "$start")"
}

# ----------------------------------------------------------------------------------------------------
# Prometheus (Debian's package): scrapes todo-api, the consumers, Kafka and the Connect workers; alert
# rules in monitoring/rules.yml (promtool-tested: make unit)
# ----------------------------------------------------------------------------------------------------

# The config and rules are copied to .state/conf/prometheus; 'up' reloads a running Prometheus when
# they changed (SIGHUP), after promtool checked them.
write_prometheus_config() {
  local dir="$CONF_DIR/prometheus"
  mkdir -p "$dir" "$PROMETHEUS_DATA"
  promtool check config "$MONITORING_DIR/prometheus.yml" >>"$LOG_DIR/prometheus.log" 2>&1 ||
    { tail -n 20 "$LOG_DIR/prometheus.log" >&2; die "Prometheus: monitoring/prometheus.yml does not pass promtool check config"; }
  PROMETHEUS_CHANGED=""
  local f
  for f in prometheus.yml rules.yml; do
    if ! cmp -s "$MONITORING_DIR/$f" "$dir/$f"; then
      cp "$MONITORING_DIR/$f" "$dir/$f"
      PROMETHEUS_CHANGED=1
    fi
  done
  write_connect_targets
  write_kafka_targets
}

# The Connect workers Prometheus scrapes (file_sd: it notices a change by itself): every running one.
write_connect_targets() {
  local dir="$CONF_DIR/prometheus" n targets=""
  mkdir -p "$dir"
  for n in 1 2; do
    if is_running "$(connect_name "$n")"; then
      targets+="${targets:+, }\"$HOST:$(connect_metrics_port "$n")\""
    fi
  done
  printf '[{"targets": [%s]}]\n' "$targets" >"$dir/connect-targets.json.tmp"
  mv "$dir/connect-targets.json.tmp" "$dir/connect-targets.json"
}

prometheus_ready() {
  http_ok "http://$HOST:$PROMETHEUS_PORT/-/ready"
}

start_prometheus() {
  local start
  start=$(now_ms)
  command -v prometheus >/dev/null 2>&1 || die "prometheus is not installed: scripts/stack.sh install"
  write_prometheus_config
  if is_running prometheus; then
    if [[ -n "$PROMETHEUS_CHANGED" ]]; then
      kill -HUP "$(pid_of prometheus)" && log "Prometheus: config or rules changed, reloaded"
    fi
    wait_until "Prometheus" "$PROMETHEUS_TIMEOUT" "$LOG_DIR/prometheus.log" prometheus_ready ||
      die "Prometheus is running (pid $(pid_of prometheus)) but does not answer"
    printf '%-10s up    %-28s already running\n' prometheus "$HOST:$PROMETHEUS_PORT"
    return 0
  fi
  if port_open "$HOST" "$PROMETHEUS_PORT"; then
    die "Prometheus: port $PROMETHEUS_PORT is already taken by $(port_owner "$PROMETHEUS_PORT") (Debian's service? systemctl disable --now prometheus)"
  fi
  start_bg prometheus "$LOG_DIR/prometheus.log" env -i -C "$PROMETHEUS_DATA" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" LANG=C.UTF-8 \
    prometheus --config.file="$CONF_DIR/prometheus/prometheus.yml" --storage.tsdb.path="$PROMETHEUS_DATA" \
    --storage.tsdb.retention.time=3d --web.listen-address="$HOST:$PROMETHEUS_PORT" ||
    die "Prometheus failed to start (log: $LOG_DIR/prometheus.log)"
  wait_ready prometheus "Prometheus" "$PROMETHEUS_TIMEOUT" "$LOG_DIR/prometheus.log" prometheus_ready ||
    die "Prometheus did not become ready (log: $LOG_DIR/prometheus.log)"
  printf '%-10s up    %-28s started in %ss\n' prometheus "$HOST:$PROMETHEUS_PORT" "$(elapsed_s "$start")"
}

# ----------------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------------

cmd_up() {
  local start
  start=$(now_ms)
  lock_stack
  make_state_dirs
  resolve_brokers up
  if ! is_installed; then
    log "components not installed yet: running install"
    do_install
  fi
  ensure_env_file
  start_postgres
  start_kafka
  kafka_apply_acls
  start_apicurio
  start_connect 1
  if ((WORKERS >= 2)); then start_connect 2; fi
  start_prometheus
  log "stack up in $(elapsed_s "$start")s ($BROKERS Kafka broker(s)) — eval \"\$(scripts/stack.sh env)\" for the addresses and passwords"
}

stop_component() { # stop_component NAME ADDRESS TIMEOUT
  local name=$1 addr=$2 timeout=$3 start
  if ! is_running "$name"; then
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.stime"
    printf '%-10s down  %-28s was not running\n' "$name" "$addr"
    return 0
  fi
  start=$(now_ms)
  stop_bg "$name" "$timeout" || die "$name could not be stopped"
  printf '%-10s down  %-28s stopped in %ss\n' "$name" "$addr" "$(elapsed_s "$start")"
}

# cmd_one start|stop COMPONENT — one component alone (outage tests stop the registry, say). "kafka" is
# the whole cluster (every node); kafka1, kafka2, kafka3 one node of it.
cmd_one() {
  local action=$1 comp=${2:-}
  lock_stack
  make_state_dirs
  pg_layout
  resolve_brokers other
  case "$action:$comp" in
  start:postgres) ensure_env_file; start_postgres ;;
  start:kafka) start_kafka ;;
  start:kafka[123]) start_kafka "$(kafka_node "$comp")" ;;
  start:apicurio) start_apicurio ;;
  start:connect) start_connect 1 ;;
  start:connect2) start_connect 2 ;;
  start:prometheus) start_prometheus ;;
  stop:postgres) stop_postgres ;;
  stop:kafka) stop_kafka ;;
  stop:kafka[123]) stop_kafka "$(kafka_node "$comp")" ;;
  stop:apicurio) stop_component apicurio "$HOST:$APICURIO_PORT" 30 ;;
  stop:connect) stop_component connect "$HOST:$CONNECT_PORT" 60; write_connect_targets ;;
  stop:connect2) stop_component connect2 "$HOST:$(connect_port 2)" 60; write_connect_targets ;;
  stop:prometheus) stop_component prometheus "$HOST:$PROMETHEUS_PORT" 30 ;;
  *) die "usage: scripts/stack.sh start|stop postgres|kafka|kafka1|kafka2|kafka3|apicurio|connect|connect2|prometheus (got '$action ${comp}')" ;;
  esac
}

# kafka_node kafkaN — N (kafka1 is node 1, whose pidfile is "kafka"); nodes above BROKERS are refused.
kafka_node() {
  local n=${1#kafka}
  ((n <= BROKERS)) || die "$1: the cluster has $BROKERS node(s)"
  echo "$n"
}

SERVICE_NAMES=(todo-api notifier analytics)

# cmd_kill NAME — a crash, for fault tests (make chaos): SIGKILL to the process started as NAME (a stack
# component, kafka1..3, or a service of scripts/services.sh); for postgres `pg_ctl stop -m immediate`
# (no shutdown checkpoint: crash recovery at the next start). Returns once the process is gone; nothing
# is restarted (scripts/stack.sh start NAME, or scripts/services.sh start NAME for a service).
cmd_kill() {
  local name=${1:-} pid i
  pg_layout
  resolve_brokers other
  case "$name" in
  postgres)
    pg_running || die "postgres is not running"
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || die "pg_ctl -m immediate stop failed"
    printf '%-10s killed (pg_ctl stop -m immediate)\n' postgres
    return 0
    ;;
  kafka1) name=kafka ;;
  kafka | kafka2 | kafka3 | apicurio | connect | connect2 | prometheus | todo-api | notifier | analytics) ;;
  *) die "usage: scripts/stack.sh kill postgres|kafka|kafka1|kafka2|kafka3|apicurio|connect|connect2|prometheus|todo-api|notifier|analytics (got '$name')" ;;
  esac
  pid=$(pid_of "$name") || die "$name is not running"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    is_running "$name" || break
    sleep 0.1
  done
  is_running "$name" && die "$name (pid $pid) still runs 10 s after SIGKILL"
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.stime"
  case "$name" in
  connect*) write_connect_targets ;;
  kafka*) write_kafka_targets ;;
  esac
  printf '%-10s killed (pid %s, SIGKILL)\n' "$name" "$pid"
}

# cmd_restart NAME — a clean restart: postgres `pg_ctl restart -m fast`; a service of
# scripts/services.sh SIGTERM then start (a consumer hands its partitions over); any other component
# stop (SIGTERM, SIGKILL after its timeout) then start.
cmd_restart() {
  local name=${1:-}
  if [[ " ${SERVICE_NAMES[*]} " == *" $name "* ]]; then
    "$REPO_DIR/scripts/services.sh" stop "$name"
    "$REPO_DIR/scripts/services.sh" start "$name"
    return 0
  fi
  case "$name" in
  postgres)
    (
      lock_stack
      pg_layout
      local start
      start=$(now_ms)
      pg_running || die "postgres is not running"
      pg_ctl_detached -D "$PGDATA_DIR" -l "$PG_LOG" -m fast -w -t 60 restart >/dev/null 2>&1 ||
        { tail -n 20 "$PG_LOG" >&2; die "pg_ctl restart failed"; }
      wait_until "PostgreSQL" "$PG_TIMEOUT" "$PG_LOG" pg_ready || die "PostgreSQL does not answer (log: $PG_LOG)"
      printf '%-10s up    %-28s restarted in %ss\n' postgres "$HOST:$PG_PORT" "$(elapsed_s "$start")"
    )
    ;;
  kafka | kafka[123] | apicurio | connect | connect2 | prometheus)
    (cmd_one stop "$name")
    (cmd_one start "$name")
    ;;
  *) die "usage: scripts/stack.sh restart postgres|kafka|kafka1|kafka2|kafka3|apicurio|connect|connect2|prometheus|todo-api|notifier|analytics (got '$name')" ;;
  esac
}

cmd_down() {
  lock_stack
  make_state_dirs
  pg_layout
  resolve_brokers other
  stop_component prometheus "$HOST:$PROMETHEUS_PORT" 30
  stop_component connect2 "$HOST:$(connect_port 2)" 60
  stop_component connect "$HOST:$CONNECT_PORT" 60
  stop_component apicurio "$HOST:$APICURIO_PORT" 30
  stop_kafka
  stop_postgres
}

cmd_status() {
  local ok=0 pid n name port
  pg_layout
  resolve_brokers other
  if pg_ready && pg_running; then
    printf '%-10s up    %-28s data %s\n' postgres "$HOST:$PG_PORT" "$PGDATA_DIR"
  else
    printf '%-10s down  %s\n' postgres "$HOST:$PG_PORT"
    ok=1
  fi
  # every node of the cluster (BROKERS of them), and any other that runs
  for n in 1 2 3; do
    name=$(kafka_name "$n")
    port=$(kafka_port "$n")
    if pid=$(pid_of "$name") && port_open "$HOST" "$port"; then
      printf '%-10s up    %-28s pid %s, node %s of %s\n' "$name" "$HOST:$port" "$pid" "$n" "$BROKERS"
    elif ((n <= BROKERS)); then
      printf '%-10s down  %s\n' "$name" "$HOST:$port"
      ok=1
    fi
  done
  if pid=$(pid_of apicurio) && apicurio_ready; then
    printf '%-10s up    %-28s pid %s\n' apicurio "http://$HOST:$APICURIO_PORT" "$pid"
  else
    printf '%-10s down  %s\n' apicurio "http://$HOST:$APICURIO_PORT"
    ok=1
  fi
  if pid=$(pid_of connect) && http_ok "http://$HOST:$CONNECT_PORT/"; then
    printf '%-10s up    %-28s pid %s\n' connect "http://$HOST:$CONNECT_PORT" "$pid"
  else
    printf '%-10s down  %s\n' connect "http://$HOST:$CONNECT_PORT"
    ok=1
  fi
  # the second worker is listed when it runs or when WORKERS=2 asks for it
  if pid=$(pid_of connect2) && http_ok "http://$HOST:$(connect_port 2)/"; then
    printf '%-10s up    %-28s pid %s\n' connect2 "http://$HOST:$(connect_port 2)" "$pid"
  elif ((WORKERS >= 2)); then
    printf '%-10s down  %s\n' connect2 "http://$HOST:$(connect_port 2)"
    ok=1
  fi
  if pid=$(pid_of prometheus) && prometheus_ready; then
    printf '%-10s up    %-28s pid %s\n' prometheus "http://$HOST:$PROMETHEUS_PORT" "$pid"
  else
    printf '%-10s down  %s\n' prometheus "http://$HOST:$PROMETHEUS_PORT"
    ok=1
  fi
  return "$ok"
}

main() {
  local cmd=${1:-}
  case "$cmd" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  start | stop) cmd_one "$cmd" "${2:-}" ;;
  kill) cmd_kill "${2:-}" ;;
  restart) cmd_restart "${2:-}" ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
  esac
}

# on one line with exit: a copy of this script that is running while the file is edited never reads on
main "$@"; exit $?
