"""Duplicate-safe bulk inserts for the ingest hot path (SQLite and PostgreSQL).

The statement is compiled once per table and shape, and rows go to the driver's executemany
with values converted once here: SQLAlchemy's per-row bind processing was half the cost of a
batch in profiles (bench/ingest.py). On PostgreSQL a batch of rows (inserted, or upserted
when their keys differ) travels as one JSON array that the server expands
(json_populate_recordset): one statement, one round trip.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
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
    # PostgreSQL, DO NOTHING: the statement taking all rows as one JSON array
    many: str | None = None

    def params(self, rows: Sequence[dict[str, Any]], positional: bool) -> list[Any]:
        """Return each row's parameters in the statement's order, converted for the driver."""
        names = self.names
        get = itemgetter(*names)
        single = len(names) == 1
        converted = [(i, conv) for i, conv in enumerate(self.converters) if conv]
        out: list[Any] = []
        for row in rows:
            values = [get(row)] if single else list(get(row))
            for i, conv in converted:
                values[i] = conv(values[i])
            out.append(tuple(values) if positional else dict(zip(names, values, strict=True)))
        return out


# From this many rows on, PostgreSQL gets them as one JSON array rather than row by row.
_MANY_FROM = 20
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
    converters = tuple(_converter(table.c[n].type, dialect) for n in order)
    if dialect.name == "postgresql":
        many = _json_sql(table, order, key, update)
        compiled = _Compiled(str(result), order, converters, bool(result.positiontup), many)
    else:
        compiled = _Compiled(str(result), order, converters, bool(result.positiontup))
    _CACHE[cache_key] = compiled
    return compiled


def _json_sql(table: Table, names: Sequence[str], key: Sequence[str], update: Sequence[str]) -> str:
    # All rows as one JSON parameter, expanded by the server: one statement and one round trip
    # per batch, where per-row executes were most of a batch's time on PostgreSQL.
    cols = ", ".join(f'"{n}"' for n in names)
    conflict = ", ".join(f'"{k}"' for k in key)
    action = "DO NOTHING"
    if update:
        action = "DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)
    return (
        f'INSERT INTO "{table.name}" ({cols}) SELECT {cols}'
        f' FROM json_populate_recordset(NULL::"{table.name}", %s::json)'
        f" ON CONFLICT ({conflict}) {action}"
    )


def _json_default(value: Any) -> Any:
    # Called by the JSON encoder for what JSON has no type for: datetimes, as ISO text.
    if isinstance(value, dt.datetime):
        return _aware(value).isoformat()  # type: ignore[union-attr]
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _unique(rows: Sequence[dict[str, Any]], key: Sequence[str]) -> bool:
    # One INSERT … ON CONFLICT DO UPDATE may not touch a row twice; row by row it may.
    get = itemgetter(*key)
    return len({get(row) for row in rows}) == len(rows)


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
    if compiled.many is not None and len(rows) >= _MANY_FROM and (not update or _unique(rows, key)):
        # Encoded for JSON, not for the driver: datetimes as ISO text (by the C encoder's
        # callback, not a Python pass over every value), JSON columns nested.
        text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        session.connection().exec_driver_sql(compiled.many, (text,))
    else:
        params = compiled.params(rows, compiled.positional)
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


def bump(session: Session, table: Any, key: dict[str, Any], column: str, by: int = 1) -> int:
    """Add `by` to a counter row (created at `by`) and return it: one statement, one round trip.

    The row stays locked until the caller's transaction ends, so concurrent callers count on.
    """
    dialect = session.get_bind().dialect.name
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = stmt.values({**key, column: by})
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key), set_={column: table.c[column] + by}
    ).returning(table.c[column])
    return int(session.execute(stmt).scalar_one())
