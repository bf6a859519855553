"""Dialect-aware bulk inserts that ignore or merge duplicates (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: Table) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no duplicate-safe insert for dialect {name}")


def insert_ignore(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> None:
    """Insert rows, silently skipping those whose unique key is already stored."""
    if rows:
        stmt = _insert(session, table).on_conflict_do_nothing(index_elements=list(key))
        session.execute(stmt, list(rows))


def upsert(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert rows; where the unique key exists, overwrite the listed columns."""
    if rows:
        stmt = _insert(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={col: stmt.excluded[col] for col in update}
        )
        session.execute(stmt, list(rows))
