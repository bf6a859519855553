"""SQLite connections: crash-safe WAL settings, and reads through a memory map."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from fangxin.db import make_engine
from fangxin.db.engine import SQLITE_MMAP_BYTES


def test_every_sqlite_connection_gets_the_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:

        def pragma(name: str) -> object:
            return conn.execute(text(f"PRAGMA {name}")).scalar_one()

        assert pragma("foreign_keys") == 1
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("busy_timeout") == 30000
        assert pragma("mmap_size") == SQLITE_MMAP_BYTES
    engine.dispose()
