#!/usr/bin/env bash
# docker-compose.yml's PostgreSQL init (runs once, on an empty data volume, as the superuser): the
# roles, databases, grants, publication and replication slot of scripts/sql/bootstrap.sql, the same
# file scripts/stack.sh runs on the local stack (mounted at /bootstrap/bootstrap.sql). Passwords come
# from the container's environment (.env); psql quotes them (:'var'), so any character is safe.
set -euo pipefail
: "${TODO_API_DB_PASSWORD:?}" "${DEBEZIUM_DB_PASSWORD:?}" "${APICURIO_DB_PASSWORD:?}"
: "${NOTIFIER_DB_PASSWORD:?}" "${ANALYTICS_DB_PASSWORD:?}" "${EXAMPLE_DB_PASSWORD:?}"

psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v todo_pw="$TODO_API_DB_PASSWORD" -v dbz_pw="$DEBEZIUM_DB_PASSWORD" -v api_pw="$APICURIO_DB_PASSWORD" \
  -v notifier_pw="$NOTIFIER_DB_PASSWORD" -v analytics_pw="$ANALYTICS_DB_PASSWORD" -v example_pw="$EXAMPLE_DB_PASSWORD" \
  -f /bootstrap/bootstrap.sql
