"""§12: the compose flow on a real PostgreSQL. roles.sql, migrations as the owner role, then
the app role every service logs in as: it writes rows but cannot erase the audit log."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy.engine import URL, make_url

from fangxin.db import make_engine
from fangxin.db.migrate import alembic_config, upgrade
from tests.conftest import PG_URL

ROLES_SQL = Path(__file__).parent.parent / "deploy" / "postgres" / "roles.sql"
OLDER = "0011_gb28181_timeouts"  # a deployment that ran every process as one owner
pytestmark = pytest.mark.skipif(not PG_URL, reason="needs FANGXIN_TEST_DATABASE_URL")


def _plain(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(False)


def _roles_sql(url: URL, **variables: str) -> None:
    """Run deploy/postgres/roles.sql with psql as the compose one-shots do."""
    psql = shutil.which("psql")
    assert psql, "psql is needed to run deploy/postgres/roles.sql"
    args = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", _plain(url)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    ran = subprocess.run(
        [*args, "-f", str(ROLES_SQL)], capture_output=True, text=True, check=False, timeout=60
    )
    assert ran.returncode == 0, ran.stderr


@pytest.fixture
def scratch() -> Iterator[tuple[URL, str, str]]:
    """A database of its own (ownership changes must not touch the shared test schema)."""
    assert PG_URL
    admin = make_url(PG_URL)
    suffix = uuid.uuid4().hex[:8]
    name = f"{admin.database}_roles_{suffix}"
    app_role, migrate_role = f"fx_app_{suffix}", f"fx_owner_{suffix}"
    with psycopg.connect(_plain(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name), app_role, migrate_role
    finally:
        with psycopg.connect(_plain(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in (app_role, migrate_role):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_migrations_run_as_the_owner_and_the_app_role_cannot_erase_the_audit_log(
    scratch: tuple[URL, str, str],
) -> None:
    url, app_role, migrate_role = scratch
    older = make_engine(url.render_as_string(False))
    with older.begin() as conn:
        cfg = alembic_config(url.render_as_string(False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, OLDER)
    older.dispose()
    app_password, migrate_password = uuid.uuid4().hex, uuid.uuid4().hex
    variables = {
        "app_role": app_role,
        "app_password": app_password,
        "migrate_role": migrate_role,
        "migrate_password": migrate_password,
        "own_tables": "on",
    }
    _roles_sql(url, **variables)  # db-roles
    owner_url = url.set(username=migrate_role, password=migrate_password)
    owner = make_engine(owner_url.render_as_string(False))
    upgrade(owner)  # migrate: alters tables it now owns, creates new ones
    owner.dispose()
    _roles_sql(url, **variables)  # db-grants
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert owners == [(migrate_role,)]
    app_url = url.set(username=app_role, password=app_password)
    with psycopg.connect(_plain(app_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_log (at, method, path, status, client, attempts)"
            " VALUES (now(), 'POST', '/api/v1/certificates', 0, 'here', 1)"
        )
        conn.execute("UPDATE audit_log SET status = 201 WHERE status = 0")  # finishing: allowed
        conn.execute(
            "INSERT INTO sites (id, kind, district, name, created_at) VALUES"
            " ('m-role', 'market', '新华区', '角色市场', now())"
        )
        # A table the owner created after the grants were first run is writable too.
        conn.execute(
            "INSERT INTO subjects (id, kind, name, contact, district, created_at) VALUES"
            " ('s-role', 'producer', '角色合作社', '0375-1234567', '郏县', now())"
        )
        conn.execute(
            "INSERT INTO subject_sites (subject_id, site_id, relation, created_at)"
            " VALUES ('s-role', 'm-role', 'own', now())"
        )
        for refused, why in (
            ("TRUNCATE audit_log", "permission denied"),
            ("DELETE FROM audit_log", "permission denied"),
            ("UPDATE audit_log SET path = '/elsewhere'", "permission denied"),
            ("UPDATE audit_log SET status = 200", "append-only"),
            ("DROP TRIGGER audit_log_append_only ON audit_log", "must be owner"),
            ("DROP TRIGGER audit_log_no_truncate ON audit_log", "must be owner"),
            ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner"),
            ("DROP TABLE subject_sites", "must be owner"),
            ("CREATE TABLE stray (id int)", "permission denied"),
            ("UPDATE alembic_version SET version_num = 'x'", "permission denied"),
        ):
            with pytest.raises(psycopg.Error, match=why):
                conn.execute(refused)
        assert conn.execute("SELECT status FROM audit_log").fetchall() == [(201,)]
