#!/usr/bin/env bash
# scripts/kafka.sh — Kafka's own command-line tools, run from the local stack's jars (.state/dist/kafka/lib)
# against the local broker, with the stack's client settings (.state/conf/tools-admin.properties:
# bootstrap servers, timeouts, and credentials once the broker requires them) filled in.
#
#   scripts/kafka.sh TOOL [ARGS...]      e.g.  scripts/kafka.sh topics --describe --topic todos.task.events
#   make kafka ARGS='consumer-groups --describe --group analytics'
#
# TOOL is the name of Kafka's script without "kafka-" and ".sh":
#   topics, consumer-groups, console-consumer, console-producer, configs, acls, get-offsets,
#   transactions, metadata-quorum, log-dirs, delete-records, leader-election, features,
#   broker-api-versions
# --bootstrap-server is added unless ARGS give one; so is the client config (--command-config, or
# --consumer.config / --producer.config for the console tools) unless ARGS give one.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  awk 'NR == 1 { next } /^set -/ || !/^#/ { exit } { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
tool=${1#kafka-}
tool=${tool%.sh}
shift
config_flag=--command-config
case "$tool" in
  topics) class=org.apache.kafka.tools.TopicCommand ;;
  consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer config_flag=--consumer.config ;;
  console-producer) class=org.apache.kafka.tools.ConsoleProducer config_flag=--producer.config ;;
  configs) class=kafka.admin.ConfigCommand ;;
  acls) class=org.apache.kafka.tools.AclCommand ;;
  get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
  transactions) class=org.apache.kafka.tools.TransactionsCommand ;;
  metadata-quorum) class=org.apache.kafka.tools.MetadataQuorumCommand ;;
  log-dirs) class=org.apache.kafka.tools.LogDirsCommand ;;
  delete-records) class=org.apache.kafka.tools.DeleteRecordsCommand ;;
  leader-election) class=org.apache.kafka.tools.LeaderElectionCommand ;;
  features) class=org.apache.kafka.tools.FeatureCommand ;;
  broker-api-versions) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  -h | --help | help) usage; exit 0 ;;
  *) die "unknown tool '$tool' (scripts/kafka.sh --help lists them)" ;;
esac

[[ -f "$ENV_FILE" ]] || die "no $ENV_FILE: start the local stack first (scripts/stack.sh up, or make run)"
# shellcheck disable=SC1090
. "$ENV_FILE"
config="$STATE_DIR/conf/tools-admin.properties"
[[ -f "$config" ]] || die "no $config: start the local stack first (scripts/stack.sh up, or make run)"

args=("$@")
extra=()
has_flag() {
  local a
  for a in "${args[@]}"; do [[ "$a" == "$1" || "$a" == "$1="* ]] && return 0; done
  return 1
}
has_flag --bootstrap-server || extra+=(--bootstrap-server "${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}")
has_flag "$config_flag" || extra+=("$config_flag" "$config")
# the tools print their own usage when given none of their action flags
kafka_class "$class" "${extra[@]}" "${args[@]}"
