#!/usr/bin/env bash
# docker-compose.yml's PostgreSQL init (runs once, on an empty data volume, as the superuser): the
# roles, databases and grants of scripts/stack.sh's pg_setup, then the publication, then the
# replication slot. Order matters: pgoutput fails on changes made between a slot's creation and its
# publication's, so the (empty) publication comes first (todo-api's migration adds the outbox table
# to it); and the slot exists before todo-api can write its first outbox row, so no committed event
# precedes it. Passwords come from the container's environment (.env).
set -euo pipefail
: "${TODO_API_DB_PASSWORD:?}" "${DEBEZIUM_DB_PASSWORD:?}" "${APICURIO_DB_PASSWORD:?}"
: "${NOTIFIER_DB_PASSWORD:?}" "${ANALYTICS_DB_PASSWORD:?}"

psql=(psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER")

"${psql[@]}" --dbname postgres \
  -v todo_pw="$TODO_API_DB_PASSWORD" -v dbz_pw="$DEBEZIUM_DB_PASSWORD" -v api_pw="$APICURIO_DB_PASSWORD" \
  -v notifier_pw="$NOTIFIER_DB_PASSWORD" -v analytics_pw="$ANALYTICS_DB_PASSWORD" <<'SQL'
CREATE ROLE todo_api WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'todo_pw';
CREATE ROLE debezium WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'dbz_pw';
CREATE ROLE apicurio WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'api_pw';
CREATE ROLE notifier WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'notifier_pw';
CREATE ROLE analytics WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'analytics_pw';
CREATE DATABASE todos;
CREATE DATABASE registry OWNER apicurio;
CREATE DATABASE notifier OWNER notifier;
CREATE DATABASE analytics OWNER analytics;
REVOKE CONNECT ON DATABASE todos FROM PUBLIC;
REVOKE CONNECT ON DATABASE registry FROM PUBLIC;
REVOKE CONNECT ON DATABASE notifier FROM PUBLIC;
REVOKE CONNECT ON DATABASE analytics FROM PUBLIC;
GRANT CONNECT, CREATE ON DATABASE todos TO todo_api;
GRANT CONNECT ON DATABASE todos TO debezium;
GRANT CONNECT ON DATABASE registry TO apicurio;
GRANT CONNECT ON DATABASE notifier TO notifier;
GRANT CONNECT ON DATABASE analytics TO analytics;
SQL

"${psql[@]}" --dbname todos <<'SQL'
GRANT USAGE, CREATE ON SCHEMA public TO todo_api;
GRANT USAGE ON SCHEMA public TO debezium;
ALTER DEFAULT PRIVILEGES FOR ROLE todo_api IN SCHEMA public GRANT SELECT ON TABLES TO debezium;
-- first the publication (empty; the migration adds the outbox table), then the slot
CREATE PUBLICATION todos_outbox WITH (publish = 'insert');
ALTER PUBLICATION todos_outbox OWNER TO todo_api;
SELECT slot_name FROM pg_create_logical_replication_slot('todos_outbox', 'pgoutput');
SQL
