-- The PostgreSQL account read tasks connect with: cloud_agent_read.
--
-- Run as a superuser (or a role with CREATEROLE that owns the schemas below), once per database
-- the agent reads, with psql:
--
--   psql -X -v ON_ERROR_STOP=1 -d DATABASE -v read_schemas=public,app [-v read_password=SECRET] -f postgres.sql
--
-- scripts/create-read-accounts.sh does this for the local server. Re-running is harmless: every
-- statement states the end state (attributes, memberships, grants), so it also takes back rights
-- granted by hand since.
--
-- What the role may do, and why nothing more:
--   * LOGIN, and no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS.
--   * pg_monitor: pg_stat_activity with other users' queries, pg_stat_* views, pg_settings, the
--     size functions — what the diagnostics read. It does not include pg_signal_backend (ending
--     or cancelling other sessions) nor the server-file roles, which are revoked below in case
--     someone granted them.
--   * default_transaction_read_only = on: a session that forgets BEGIN READ ONLY still cannot
--     write (the executor sets it on every read task as well).
--   * USAGE and SELECT on the schemas listed in read_schemas, for the tables there now and (through
--     default privileges) for the tables the role running this script creates there later. Only
--     the schemas the diagnostics need (the application's tables, the telemetry tables of
--     deployments/<env>/environment.yaml `telemetry:`), not pg_read_all_data: a read task should
--     see what an incident needs, not every table of the cluster. Tables another role creates
--     later need that role's own ALTER DEFAULT PRIVILEGES (or a re-run of this script).
--   * Nothing else: no INSERT/UPDATE/DELETE/TRUNCATE/REFERENCES/TRIGGER, no CREATE on any schema.
--     The executor checks these rights at first use and warns if the account has more.

\set ON_ERROR_STOP on
-- Quiet on a re-run ("already a member", "schema ... skipped"); warnings and errors still show.
SET client_min_messages = warning;
\if :{?read_schemas}
\else
\set read_schemas public
\endif

SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cloud_agent_read') AS create_read_role \gset
\if :create_read_role
CREATE ROLE cloud_agent_read LOGIN;
\endif

ALTER ROLE cloud_agent_read WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
\if :{?read_password}
ALTER ROLE cloud_agent_read PASSWORD :'read_password';
\endif
ALTER ROLE cloud_agent_read SET default_transaction_read_only = on;

GRANT pg_monitor TO cloud_agent_read;
-- REVOKE of a role the account is not a member of only warns; silence that.
SET client_min_messages = error;
REVOKE pg_signal_backend, pg_read_server_files, pg_write_server_files, pg_execute_server_program
  FROM cloud_agent_read;
SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pg_write_all_data') AS has_write_all_data \gset
\if :has_write_all_data
REVOKE pg_write_all_data FROM cloud_agent_read;
\endif
SET client_min_messages = warning;

SELECT format('GRANT CONNECT ON DATABASE %I TO cloud_agent_read', current_database()) \gexec

-- The schemas, one by one (psql variables do not reach into a DO block; a setting does).
SELECT set_config('cloud_agent.read_schemas', :'read_schemas', false) \gset
DO $grant$
DECLARE
    schema_name text;
BEGIN
    FOREACH schema_name IN ARRAY string_to_array(current_setting('cloud_agent.read_schemas'), ',') LOOP
        schema_name := btrim(schema_name);
        IF schema_name = '' THEN
            CONTINUE;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = schema_name) THEN
            RAISE NOTICE 'schema % does not exist (yet): skipped', schema_name;
            CONTINUE;
        END IF;
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM cloud_agent_read', schema_name);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO cloud_agent_read', schema_name);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM cloud_agent_read', schema_name);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO cloud_agent_read', schema_name);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM cloud_agent_read', schema_name);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO cloud_agent_read', schema_name);
    END LOOP;
END
$grant$;
