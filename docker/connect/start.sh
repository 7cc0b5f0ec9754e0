#!/bin/sh
# docker-compose.yml's Connect worker: writes the worker's own Kafka password (User:connect, from the
# container's KAFKA_CONNECT_PASSWORD) to a mode-600 file that connect.properties reads through the
# FileConfigProvider (never a literal in a config), drops it from the environment and runs the worker.
set -eu
: "${KAFKA_CONNECT_PASSWORD:?}"
umask 077
printf 'KAFKA_CONNECT_PASSWORD=%s\n' "$KAFKA_CONNECT_PASSWORD" >/opt/connect/secrets/kafka.properties
unset KAFKA_CONNECT_PASSWORD
exec /opt/kafka/bin/connect-distributed.sh /opt/connect/connect.properties
