#!/bin/sh
# docker-compose.yml's kafka-users job: creates (or resets) the SCRAM-SHA-512 user of each party in
# KAFKA_USERS, as User:broker (a super user, the only one that exists before them), with its password
# from KAFKA_<USER>_PASSWORD (dashes as underscores; .env), as scripts/stack.sh's kafka_ensure_users does.
# Setting a user's credential again is harmless, so every start applies them all (a changed password in
# .env takes effect). Each password goes through a mode-600 file, never a command line.
set -eu
: "${KAFKA_BOOTSTRAP_SERVERS:?}" "${KAFKA_BROKER_PASSWORD:?}" "${KAFKA_USERS:?}"
umask 077
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="%s";\n' \
  "$KAFKA_BROKER_PASSWORD" >"$dir/client.properties"
for u in $KAFKA_USERS; do
  var="KAFKA_$(printf '%s' "$u" | tr 'a-z-' 'A-Z_')_PASSWORD"
  eval "pw=\${$var:-}"
  [ -n "$pw" ] || { echo "kafka-users: $var is not set (.env)" >&2; exit 1; }
  printf 'SCRAM-SHA-512=password=%s\n' "$pw" >"$dir/scram"
  /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --command-config "$dir/client.properties" \
    --alter --add-config-file "$dir/scram" --entity-type users --entity-name "$u"
done
echo "kafka-users: SCRAM users set: $KAFKA_USERS"
