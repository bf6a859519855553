"""PostgreSQL pool: a connection that idled is pinged at checkout, replaced if it was dropped."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from fangxin.db import make_engine
from fangxin.db.engine import ping_when_idle
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs FANGXIN_TEST_DATABASE_URL")


def _backend(url: str, idle_s: float) -> tuple[Engine, int]:
    engine = make_engine(url, pool_size=1, pool_pre_ping=False)
    ping_when_idle(engine, idle_s)
    with engine.connect() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    return engine, pid


def _kill(pid: int) -> None:
    assert PG_URL
    admin = make_engine(PG_URL)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_idle_connection_killed_by_the_server_is_replaced_on_checkout() -> None:
    """A dropped connection that idled is pinged at checkout, discarded, and a new one serves."""
    assert PG_URL
    engine, pid = _backend(PG_URL, idle_s=0.05)
    _kill(pid)
    time.sleep(0.1)
    with engine.connect() as conn:
        again = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    assert again != pid
    engine.dispose()


def test_connection_back_in_use_soon_is_not_pinged() -> None:
    """Within idle_s the pool hands the connection out unpinged: a dropped one fails once."""
    assert PG_URL
    engine, pid = _backend(PG_URL, idle_s=60)
    _kill(pid)
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    with engine.connect() as conn:
        assert int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()) != pid
    engine.dispose()
