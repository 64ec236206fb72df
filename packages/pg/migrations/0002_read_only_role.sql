-- strata_readonly: a NOLOGIN role that can read every table (pg_read_all_data) and do nothing
-- else. The read-only SQL runner (query plans, the importer's postgres source) switches to it with
-- SET LOCAL ROLE, so a statement the SQL guard missed still cannot write or call superuser-only
-- functions (pg_read_file, pg_terminate_backend on other roles' sessions, ...).
-- Roles are cluster-wide: the role is created once and each database's run only re-grants. When
-- this user may not do it (no CREATEROLE, no ADMIN on pg_read_all_data, PostgreSQL < 14) the
-- migration only says so and the runner keeps its other layers (READ ONLY transaction + guard).
-- The migrating user becomes a member so that it may SET ROLE; on PostgreSQL 16+ without
-- inheriting the role's read rights. On 14-15 a non-superuser member inherits them: grant the
-- role by hand (and drop this membership) if that matters for your cluster.
DO $$
DECLARE
  version int := current_setting('server_version_num')::int;
BEGIN
  IF version < 140000 THEN
    RAISE NOTICE 'strata_readonly not created: pg_read_all_data needs PostgreSQL 14 or later';
    RETURN;
  END IF;
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'strata_readonly') THEN
      CREATE ROLE strata_readonly NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    GRANT pg_read_all_data TO strata_readonly;
    IF version >= 160000 THEN
      EXECUTE format('GRANT strata_readonly TO %I WITH INHERIT FALSE, SET TRUE', current_user);
    ELSE
      EXECUTE format('GRANT strata_readonly TO %I', current_user);
    END IF;
  EXCEPTION
    -- Another database migrating at the same moment created it first, or we may not.
    WHEN insufficient_privilege OR duplicate_object OR unique_violation THEN
      RAISE NOTICE 'strata_readonly not set up here (%); read-only SQL runs without a role switch',
        SQLERRM;
  END;
END
$$;
