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

log "applying topics (topics/topics.yaml)"
"$ctl" topics apply
log "registering schemas (schemas/*.avsc)"
"$ctl" schemas register
"$REPO_DIR/scripts/services.sh" start todo-api
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
  kcat -b 127.0.0.1:9092 -C -t todos.task.events -f '%k %h\n'   (raw records, if kcat is installed)

make status shows each component; make down stops everything and keeps the data.
MSG
