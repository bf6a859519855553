"""§12: /readyz shows states only; the audit log fails closed, refuses TRUNCATE; the app's role."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fangxin.service.context import state
from fangxin.trace.certificates.models import Subject
from tests.conftest import PG_URL
from tests.trace_helpers import PRODUCER, auth

ROLES_SQL = Path(__file__).parent.parent / "deploy" / "postgres" / "roles.sql"
needs_pg = pytest.mark.skipif(not PG_URL, reason="needs FANGXIN_TEST_DATABASE_URL")


def test_readyz_reports_states_not_addresses(client: FlaskClient) -> None:
    with client.application.app_context():
        app_state = state()
        # a closed port on loopback, dressed up with the production user name
        app_state.settings = replace(
            app_state.settings, mqtt_url="mqtt://fangxin-ingest:s3cret@127.0.0.1:1"
        )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["checks"] == {
        "database": "ok",
        "broker": "unreachable",
        "sink": "ok",
    }
    body = response.get_data(as_text=True)
    for leak in ("fangxin-ingest", "127.0.0.1", "mqtt://", "s3cret"):
        assert leak not in body


def test_a_write_whose_audit_row_cannot_be_written_is_refused(
    client: FlaskClient, admin_key: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with engine.begin() as conn:  # the audit log is gone (a full disk, a broken grant, …)
        conn.execute(text("ALTER TABLE audit_log RENAME TO audit_log_away"))
    try:
        refused = client.post("/api/v1/subjects", json=PRODUCER, headers=auth(admin_key))
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log_away RENAME TO audit_log"))
    assert refused.status_code == 503
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["title"] == "Audit log unavailable"
    assert "nothing was changed" in refused.get_json()["detail"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == 0
    # with the log back, the same request succeeds and is audited in its own transaction
    assert (
        client.post("/api/v1/subjects", json=PRODUCER, headers=auth(admin_key)).status_code == 201
    )
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, object_id FROM audit_log")).all()
    assert [(r.status, r.object_id) for r in rows] == [(201, f"id={PRODUCER['id']}")]


def test_a_write_on_a_path_with_ids_is_audited_with_its_status(
    client: FlaskClient, admin_key: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # The pending row once carried the path's ids, so the trigger refused to finish it: the
    # row stayed at status 0 and the error only reached the log.
    client.post("/api/v1/subjects", json=PRODUCER, headers=auth(admin_key))
    made = client.post(f"/api/v1/subjects/{PRODUCER['id']}/keys", headers=auth(admin_key))
    assert made.status_code == 201
    assert "Could not write the audit entry" not in caplog.text
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, object_id FROM audit_log WHERE path LIKE '%/keys'")
        ).one()
    assert (row.status, row.object_id) == (201, f"subject_id={PRODUCER['id']}")


@needs_pg
def test_truncate_of_the_audit_log_is_refused(engine: Engine, client: FlaskClient) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE triggers are PostgreSQL's")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (at, method, path, status, client, attempts)"
                " VALUES (now(), 'POST', '/x', 201, 'here', 1)"
            )
        )
    with engine.begin() as conn, pytest.raises(DBAPIError, match="TRUNCATE refused"):
        conn.execute(text("TRUNCATE audit_log"))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM audit_log")) == 1


def _psql(url: str, **variables: str) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    assert psql, "psql is needed to run deploy/postgres/roles.sql"
    args = [psql, "-X", "-q", make_url(url).set(drivername="postgresql").render_as_string(False)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    return subprocess.run(
        [*args, "-f", str(ROLES_SQL)], capture_output=True, text=True, check=False, timeout=60
    )


@needs_pg
def test_the_app_role_can_write_rows_but_not_erase_the_audit_log(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    assert PG_URL
    suffix = uuid.uuid4().hex[:8]
    app_role, migrate_role, password = f"fx_app_{suffix}", f"fx_migrate_{suffix}", uuid.uuid4().hex
    variables = {"app_role": app_role, "migrate_role": migrate_role, "app_password": password}
    try:
        ran = _psql(PG_URL, **variables)
        assert ran.returncode == 0, ran.stderr
        assert _psql(PG_URL, **variables).returncode == 0  # idempotent
        url = make_url(PG_URL).set(drivername="postgresql", username=app_role, password=password)
        with psycopg.connect(url.render_as_string(False), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO audit_log (at, method, path, status, client, attempts)"
                " VALUES (now(), 'POST', '/api/v1/results', 0, 'here', 1)"
            )
            conn.execute(
                "INSERT INTO sites (id, kind, district, name, created_at) VALUES"
                " ('m-role', 'market', '新华区', '角色市场', now())"
            )
            conn.execute("UPDATE audit_log SET status = 201 WHERE status = 0")  # finishing: ok
            for refused, why in (
                ("TRUNCATE audit_log", "permission denied"),
                ("DELETE FROM audit_log", "permission denied"),
                ("UPDATE audit_log SET path = '/elsewhere'", "permission denied"),
                ("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate", "must be owner"),
                ("DROP TRIGGER audit_log_append_only ON audit_log", "must be owner"),
                ("ALTER TABLE sites ADD COLUMN x int", "must be owner"),
                ("DROP TABLE audit_log", "must be owner"),
                ("DELETE FROM alembic_version", "permission denied"),
            ):
                with pytest.raises(psycopg.Error, match=why):
                    conn.execute(refused)
            assert conn.execute("SELECT status FROM audit_log").fetchall() == [(201,)]
    finally:
        with engine.begin() as conn:
            for role in (app_role, migrate_role):
                exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
                if exists:
                    conn.execute(text(f'DROP OWNED BY "{role}"'))
                    conn.execute(text(f'DROP ROLE "{role}"'))
