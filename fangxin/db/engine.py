"""Engines (SQLite tuned for crash safety) and the process's session factory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if url.startswith("sqlite"):
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash (kill -9); only power loss can cost
            # the last commits, which the broker then redelivers because they were not acked.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # Replace connections after an hour: proxies and firewalls drop long-lived ones silently.
    kwargs.setdefault("pool_recycle", 3600)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        ping_when_idle(engine, PING_IDLE_S)
    return engine


# A connection back in use within this time is not pinged: pinging every checkout (pre_ping)
# cost a round trip per request, a third of a cached scan page's time on PostgreSQL. A restart
# takes longer than this, so a connection that predates one has idled past it and is pinged;
# one caught mid-request fails that request and SQLAlchemy invalidates the rest of the pool.
PING_IDLE_S = 1.0


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout when it idled idle_s or more; replace it if dead."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info.pop("idle_since", None)

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(str(error)) from error
        if not alive:
            raise exc.DisconnectionError("ping failed")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the process's session factory; callers own the transactions."""
    return sessionmaker(engine, expire_on_commit=False)


def make_reader(engine: Engine) -> Engine:
    """Return the engine's autocommit view for the read-only doors (the same pool)."""
    if engine.dialect.name == "sqlite":
        # Back from autocommit, a connection is reset with PRAGMA read_uncommitted = 0, and
        # SQLite expires every statement the connection prepared on any such PRAGMA: the scan
        # page's query was compiled again on every request (0.4 ms of CPU, a quarter of a
        # first-sight page). Nothing sets read_uncommitted, so turning autocommit off is the
        # whole reset.
        setattr(engine.dialect, "reset_isolation_level", _sqlite_reset)  # noqa: B010
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_reset(dbapi_conn: Any) -> None:
    dbapi_conn.isolation_level = ""  # pysqlite's default: BEGIN before writes
