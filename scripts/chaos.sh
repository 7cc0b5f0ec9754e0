#!/usr/bin/env bash
# scripts/chaos.sh — `make chaos`: runs bin/chaos (faults under load, per-event accounting) against the
# running local pipeline and passes its arguments on (bin/chaos -h lists them).
#
#   BROKERS=3 scripts/chaos.sh ...   runs on the three-node Kafka cluster: when another one runs, the
#                                    pipeline is brought down and up with BROKERS=3 first, and brought
#                                    back to the cluster that ran before afterwards (make run)
#
# It needs the stack to itself: the faults restart shared components. The exit status is bin/chaos's.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

want=${BROKERS:-}
[[ -z "$want" || "$want" =~ ^[13]$ ]] || die "BROKERS must be 1 or 3, got '$want'"
[[ -x "$REPO_DIR/bin/chaos" ]] || die "$REPO_DIR/bin/chaos is missing: make chaos builds it"
[[ -f "$ENV_FILE" ]] || die "no $ENV_FILE: run 'make run' first"

# switch_to N — the whole pipeline on the N-broker cluster (services stopped, stack down, make run)
switch_to() {
  log "chaos: switching the pipeline to $1 Kafka broker(s)"
  "$REPO_DIR/scripts/services.sh" stop
  "$REPO_DIR/scripts/stack.sh" down
  BROKERS=$1 WORKERS=$workers "$REPO_DIR/scripts/run.sh" >/dev/null
}

# the Connect workers that run now: a switch brings the same number back
workers=1
if is_running connect2; then workers=2; fi

running=1
if [[ -s "$RUN_DIR/kafka.brokers" ]] && is_running kafka; then running=$(<"$RUN_DIR/kafka.brokers"); fi
switched=""
if [[ -n "$want" && "$want" != "$running" ]]; then
  switch_to "$want"
  switched=1
fi
rc=0
(
  set -a
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  set +a
  cd "$REPO_DIR"
  exec "$REPO_DIR/bin/chaos" "$@"
) || rc=$?
if [[ -n "$switched" ]]; then
  switch_to "$running"
fi
exit "$rc"
