"""Public reads (scan page, site status, board) run on autocommit connections of the same pool."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from fangxin.service.context import AppState
from tests.trace_helpers import market, setup


def _transactional(dbapi_conn: Any, dialect: str) -> bool:
    """Whether a DBAPI connection opens transactions (not autocommit)."""
    if dialect == "postgresql":
        return not dbapi_conn.autocommit
    return dbapi_conn.isolation_level is not None


def test_scan_reads_outside_transactions_and_returns_connections_transactional(
    app: Flask, client: FlaskClient, admin_key: str, engine: Engine
) -> None:
    """The scan page's queries see autocommit; a write session afterwards gets a transaction."""
    _, cert = setup(client, admin_key)
    seen: list[bool] = []

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):  # the scan's write is not
            seen.append(_transactional(conn.connection.dbapi_connection, engine.dialect.name))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(f"/c/{cert['code']}").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen
    assert not any(seen)
    state: AppState = app.extensions["fangxin"]
    with state.sessions() as session:
        session.execute(text("SELECT 1"))
        raw = session.connection().connection.dbapi_connection
        assert _transactional(raw, engine.dialect.name)


def test_site_status_and_board_read_outside_transactions(
    client: FlaskClient, sessions: sessionmaker[Session], engine: Engine
) -> None:
    """A market's status and board run every query on an autocommit connection."""
    market(sessions)
    seen: list[bool] = []

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):  # the scan's write is not
            seen.append(_transactional(conn.connection.dbapi_connection, engine.dialect.name))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get("/api/v1/sites/m-001/status").status_code == 200
        assert client.get("/m/m-001/board").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(seen) >= 8
    assert not any(seen)
