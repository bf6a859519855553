"""Duplicate-safe bulk inserts for the ingest hot path (SQLite and PostgreSQL).

The statement is compiled once per table and shape, and rows go to the driver's executemany
with values converted once here: SQLAlchemy's per-row bind processing was half the cost of a
batch in profiles (bench/ingest.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from fangxin.db import UTCDateTime

Convert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    converters: tuple[Convert | None, ...]
    positional: bool


_CACHE: dict[tuple[Any, ...], _Compiled] = {}


def _sqlite_time(value: dt.datetime | None) -> str | None:
    # the text form SQLAlchemy's SQLite DateTime writes and reads back, in UTC like UTCDateTime
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a timezone-aware column")
    # isoformat is the C fast path; it renders exactly SQLAlchemy's "%Y-%m-%d %H:%M:%S.%f"
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a timezone-aware column")
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _converter(column_type: Any, dialect: Dialect) -> Convert | None:
    if isinstance(column_type, UTCDateTime):
        return _sqlite_time if dialect.name == "sqlite" else _aware
    if isinstance(column_type, JSON):
        return _json
    return None


def _compile(
    session: Session,
    table: Table,
    names: tuple[str, ...],
    key: Sequence[str],
    update: Sequence[str],
) -> _Compiled:
    dialect = session.get_bind().dialect
    cache_key = (dialect.name, table.name, names, tuple(key), tuple(update))
    compiled = _CACHE.get(cache_key)
    if compiled is not None:
        return compiled
    if dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect.name == "sqlite":
        stmt = sqlite.insert(table)
    else:
        raise NotImplementedError(f"no duplicate-safe insert for dialect {dialect.name}")
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={col: stmt.excluded[col] for col in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    result = stmt.inline().compile(dialect=dialect, column_keys=list(names))
    order = tuple(result.positiontup) if result.positiontup else names
    compiled = _Compiled(
        sql=str(result),
        names=order,
        converters=tuple(_converter(table.c[n].type, dialect) for n in order),
        positional=bool(result.positiontup),
    )
    _CACHE[cache_key] = compiled
    return compiled


def _execute(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    if not rows:
        return
    compiled = _compile(session, table, tuple(rows[0]), key, update)
    pairs = list(zip(compiled.names, compiled.converters, strict=True))
    if compiled.positional:
        params: list[Any] = [
            tuple(conv(row[name]) if conv else row[name] for name, conv in pairs) for row in rows
        ]
    else:
        params = [
            {name: conv(row[name]) if conv else row[name] for name, conv in pairs} for row in rows
        ]
    session.connection().exec_driver_sql(compiled.sql, params)


def insert_ignore(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> None:
    """Insert rows (all with the same keys), skipping those whose unique key is stored."""
    _execute(session, table, rows, key)


def upsert(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert rows (all with the same keys); where the unique key exists, overwrite `update`."""
    _execute(session, table, rows, key, update)
