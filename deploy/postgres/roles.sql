-- fangxin's PostgreSQL roles: migrations own the schema, the app only reads and writes rows.
--
--   psql -v ON_ERROR_STOP=1 -v migrate_role=fangxin_migrate -v app_role=fangxin_app \
--        -v app_password="$FANGXIN_APP_DB_PASSWORD" \
--        [-v migrate_password="$FANGXIN_MIGRATE_DB_PASSWORD"] [-v own_tables=on] \
--        -d fangxin -f deploy/postgres/roles.sql
--
-- Run it as a superuser (or the database owner) once before `fangxin db upgrade` (as the
-- migrate role) and again after every upgrade: it is idempotent and grants on new tables.
-- docker-compose.yml does both (services db-roles and db-grants). With migrate_password the
-- migrate role may log in (the migrate service does); with own_tables=on every table of the
-- schema that another role owns (a deployment that ran as one owner) passes to the migrate role.
-- The app role owns nothing, so it cannot TRUNCATE, ALTER or DROP a table, nor disable or drop
-- the audit log's triggers; on audit_log it may only INSERT, SELECT and set the three columns
-- the trigger lets change (status once, object_id once, attempts).

\set ON_ERROR_STOP 1

SELECT format('CREATE ROLE %I NOLOGIN', :'migrate_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'migrate_role') \gexec

SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec

ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'app_password';

\if :{?migrate_password}
ALTER ROLE :"migrate_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'migrate_password';
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'migrate_role') \gexec
\endif

\if :{?own_tables}
-- Tables made by an earlier single-owner deployment pass to the migrate role (their owned
-- sequences follow them), so the next upgrade can alter them and the app role owns none.
SELECT format('ALTER TABLE %I OWNER TO %I', tablename, :'migrate_role')
FROM pg_tables
WHERE schemaname = 'public' AND tableowner <> :'migrate_role' \gexec
\endif

-- The app connects and uses the schema; it creates nothing in it.
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'app_role') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";
GRANT USAGE, CREATE ON SCHEMA public TO :"migrate_role";

-- Rows of every table the migrations made so far, and of those they will make.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrate_role" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrate_role" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The audit log: append, read, and the updates its trigger allows; never TRUNCATE or DELETE.
SELECT format('REVOKE ALL ON audit_log FROM %I', :'app_role')
WHERE to_regclass('audit_log') IS NOT NULL \gexec
SELECT format('GRANT SELECT, INSERT ON audit_log TO %I', :'app_role')
WHERE to_regclass('audit_log') IS NOT NULL \gexec
SELECT format('GRANT UPDATE (status, object_id, attempts) ON audit_log TO %I', :'app_role')
WHERE to_regclass('audit_log') IS NOT NULL \gexec
-- Alembic's bookkeeping is the migrate role's alone.
SELECT format('REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM %I', :'app_role')
WHERE to_regclass('alembic_version') IS NOT NULL \gexec
