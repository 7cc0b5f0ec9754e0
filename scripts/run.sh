#!/usr/bin/env bash
# scripts/run.sh — `make run`: brings the whole pipeline up on the local stack and returns once every
# part answers. Safe to run again while everything is up: each step leaves what is already right alone.
#
# Order matters: topics exist before the connector could auto-create them with the wrong settings;
# schemas are registered before todo-api looks them up; todo-api's migrations create the outbox table
# and its publication before the connector starts; the replication slot, made by the stack, predates
# every outbox write, so no committed event can be missed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$(now_ms)
"$REPO_DIR/scripts/stack.sh" up
# shellcheck disable=SC1090
. "$ENV_FILE"
ctl="$REPO_DIR/bin/pipelinectl"
[[ -x "$ctl" ]] || die "$ctl is missing: run 'make build' first"

# the Kafka ACLs (topics/acls.yaml) were applied by stack.sh up, as User:admin: every other party, the
# operator applying the topics here included, works within them
log "applying topics (topics/topics.yaml) as the operator"
"$ctl" topics apply
log "registering schemas (schemas/*.avsc)"
"$ctl" schemas register
"$REPO_DIR/scripts/services.sh" start todo-api
# After a switch of Kafka clusters (BROKERS=1 <-> 3), the offsets a connector has in this cluster are
# older than its replication slot's confirmed position, which the other cluster's run moved on, and
# Debezium refuses to start there ("no longer available on the server"). Without offsets it starts at
# the slot's position: nothing the slot still holds is skipped (the events written meanwhile went to
# the other cluster).
reset_to_slot() {
  local c="$CONNECT_URL/connectors/$1" i state=""
  curl -fsS --max-time 5 "$c" >/dev/null 2>&1 || return 0 # not in this cluster: it will start from the slot
  log "Kafka cluster switched: connector $1 restarts from its replication slot (its offsets here are older)"
  curl -fsS --max-time 10 -X PUT "$c/stop" >/dev/null || die "could not stop connector $1"
  for ((i = 0; i < 60; i++)); do
    state=$(curl -fsS --max-time 5 "$c/status" | sed -nE 's/.*"connector":\{"state":"([A-Z]+)".*/\1/p') || state=""
    [[ "$state" == STOPPED ]] && break
    sleep 1
  done
  [[ "$state" == STOPPED ]] || die "connector $1 did not stop (state '$state')"
  curl -fsS --max-time 30 -X DELETE "$c/offsets" >/dev/null || die "could not reset the offsets of connector $1"
  curl -fsS --max-time 10 -X PUT "$c/resume" >/dev/null || die "could not resume connector $1"
}
if [[ -f "$RUN_DIR/kafka.switched" ]]; then
  for f in "$REPO_DIR"/connectors/*.json; do reset_to_slot "$(basename "$f" .json)"; done
  rm -f "$RUN_DIR/kafka.switched"
fi
log "deploying connectors (connectors/*.json)"
"$ctl" connectors apply
"$REPO_DIR/scripts/services.sh" start notifier analytics

token=$("$ctl" token --user alice)
cat <<MSG

The pipeline is up ($(elapsed_s "$t0")s). Try it:

  TOKEN=\$(make -s token USER=alice)
  curl -s -X POST http://127.0.0.1:8080/v1/todos -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' -d '{"title":"Buy milk"}'
  curl -s http://127.0.0.1:8080/v1/todos -H "Authorization: Bearer \$TOKEN"

A token for alice, valid 24 h:
  $token

Watch the events:
  curl -s http://127.0.0.1:8082/v1/stats -H "Authorization: Bearer \$TOKEN"   (analytics: your figures)
  make logs                                  (the notifier logs each notification it records)
  bin/pipelinectl dlq list                   (records the consumers dead-lettered)
  bin/pipelinectl connectors status          (the Debezium connector and its task)
  kcat -b 127.0.0.1:9092 -X security.protocol=SASL_PLAINTEXT -X sasl.mechanism=SCRAM-SHA-512 \\
       -X sasl.username=operator -X sasl.password="\$KAFKA_OPERATOR_PASSWORD" \\
       -C -t todos.task.events -f '%k %h\n'   (raw records, if kcat is installed; after . .state/env)

make status shows each component; make down stops everything and keeps the data.
MSG
