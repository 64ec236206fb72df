#!/usr/bin/env bash
# Runs once, on the first start of an empty data volume (docker-entrypoint-initdb.d), as the
# bootstrap superuser: the role and database README "Database role" asks a DBA to create.
# Strata itself never connects as a superuser.
set -euo pipefail

: "${STRATA_DB_PASSWORD:?STRATA_DB_PASSWORD is required}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v strata_password="$STRATA_DB_PASSWORD" <<'SQL'
CREATE ROLE strata LOGIN PASSWORD :'strata_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE DATABASE strata OWNER strata;
-- PgBouncer (transaction mode) cannot forward per-connection settings: the role carries them.
ALTER ROLE strata SET statement_timeout = '30s';
ALTER ROLE strata SET idle_in_transaction_session_timeout = '60s';
-- The query monitor reads every session's statements and cancels runaway ones.
GRANT pg_read_all_stats, pg_signal_backend TO strata;
-- Caller-supplied SQL (query plans, postgres import sources) runs as this role.
CREATE ROLE strata_readonly NOLOGIN;
GRANT pg_read_all_data TO strata_readonly;
GRANT strata_readonly TO strata WITH INHERIT FALSE, SET TRUE;
\c strata
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL

# Keycloak (the `auth` profile) keeps its realms in a database of its own.
if [ -n "${KEYCLOAK_DB_PASSWORD:-}" ]; then
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v keycloak_password="$KEYCLOAK_DB_PASSWORD" <<'SQL'
CREATE ROLE keycloak LOGIN PASSWORD :'keycloak_password';
CREATE DATABASE keycloak OWNER keycloak;
SQL
fi
