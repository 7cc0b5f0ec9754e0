-- scripts/sql/bootstrap.sql — the PostgreSQL bootstrap of the pipeline, the one copy used by both
-- scripts/stack.sh (every 'up', over the superuser's unix socket) and docker/postgres/init.sh (once,
-- on an empty volume). Idempotent: running it again changes nothing, and it brings an older cluster's
-- grants to what is written here (it revokes what is no longer granted).
--
-- Run it with psql as a superuser, connected to the database postgres, with these psql variables set
-- (hex or other quote-free strings; set them with \set on standard input, never on a command line,
-- where `ps` would show them): todo_pw, dbz_pw, api_pw, notifier_pw, analytics_pw, example_pw.
--
-- Who may do what (least privilege; proven by e2e/privileges_test.go):
--   todo_api   owns the todos database's tables (todos, outbox, its migrations); connects to todos only;
--              owns the publication todos_outbox so that its migration can add the outbox table to it.
--   debezium   REPLICATION, not superuser; connects to todos only; reads no table (the connector runs
--              with snapshot.mode=no_data and pgoutput sends the outbox rows over the replication
--              protocol); cannot create or alter publications (it owns none and has no CREATE on todos).
--   apicurio   owns the registry database.
--   notifier, analytics  each owns the database of its name and reaches no other.
--   example    the same, for examples/go-consumer (a consumer team's program outside this module).
\set ON_ERROR_STOP on

SELECT 'CREATE ROLE todo_api' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'todo_api')\gexec
SELECT 'CREATE ROLE debezium' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'debezium')\gexec
SELECT 'CREATE ROLE apicurio' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'apicurio')\gexec
SELECT 'CREATE ROLE notifier' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'notifier')\gexec
SELECT 'CREATE ROLE analytics' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analytics')\gexec
SELECT 'CREATE ROLE example' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'example')\gexec
ALTER ROLE todo_api WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'todo_pw';
ALTER ROLE debezium WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'dbz_pw';
ALTER ROLE apicurio WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'api_pw';
ALTER ROLE notifier WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'notifier_pw';
ALTER ROLE analytics WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'analytics_pw';
ALTER ROLE example WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'example_pw';

SELECT 'CREATE DATABASE todos' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'todos')\gexec
SELECT 'CREATE DATABASE registry OWNER apicurio' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'registry')\gexec
SELECT 'CREATE DATABASE notifier OWNER notifier' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'notifier')\gexec
SELECT 'CREATE DATABASE analytics OWNER analytics' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'analytics')\gexec
SELECT 'CREATE DATABASE example OWNER example' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'example')\gexec
ALTER DATABASE registry OWNER TO apicurio;
ALTER DATABASE notifier OWNER TO notifier;
ALTER DATABASE analytics OWNER TO analytics;
ALTER DATABASE example OWNER TO example;
-- PUBLIC may connect to every database by default: to none of ours, nor to postgres (the superuser's).
REVOKE CONNECT, TEMPORARY ON DATABASE postgres, todos, registry, notifier, analytics, example FROM PUBLIC;
GRANT CONNECT ON DATABASE todos TO todo_api;
-- no CREATE on the database: todo_api makes no schemas and no publications (the platform makes it, below)
REVOKE CREATE ON DATABASE todos FROM todo_api;
GRANT CONNECT ON DATABASE todos TO debezium;
GRANT CONNECT ON DATABASE registry TO apicurio;
GRANT CONNECT ON DATABASE notifier TO notifier;
GRANT CONNECT ON DATABASE analytics TO analytics;
GRANT CONNECT ON DATABASE example TO example;

\connect todos
-- PostgreSQL 15: PUBLIC has no CREATE on schema public; todo_api creates its tables there.
GRANT USAGE, CREATE ON SCHEMA public TO todo_api;
GRANT USAGE ON SCHEMA public TO debezium;
-- Earlier versions of this bootstrap let debezium read every table todo_api creates; it needs none.
ALTER DEFAULT PRIVILEGES FOR ROLE todo_api IN SCHEMA public REVOKE ALL ON TABLES FROM debezium;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM debezium;
-- The publication exists (empty; todo-api's migration adds the outbox table to it) before the slot:
-- pgoutput fails on any change made between a slot's creation and its publication's. The slot
-- exists before the API can write its first outbox row, so no committed event precedes it.
SELECT 'CREATE PUBLICATION todos_outbox WITH (publish = ''insert'')'
 WHERE NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'todos_outbox')\gexec
ALTER PUBLICATION todos_outbox OWNER TO todo_api;
SELECT 'created replication slot ' || slot_name FROM pg_create_logical_replication_slot('todos_outbox', 'pgoutput')
 WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'todos_outbox');
