"""The scan pages' change feed: which certificates' pages changed since a reader's cursor.

Triggers (migration 0019) log every write that changes what a page shows. On SQLite one writer
at a time takes ids, so an id seen means every lower id is committed: the cursor is the last
id read. On PostgreSQL ids are taken before commit and commit in any order, so the cursor is
the oldest transaction still running at the read (its snapshot's xmin): every row of an older
one was visible then, and rows of later ones are read again next time (dropping a page twice
is harmless), so no change is missed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, select, text

from fangxin.trace.certificates.models import PageChange

# Rows older than this are pruned; a reader that has not read for half of it starts over.
KEEP_S = 3600.0

_PG_READ = text(
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
    "ARRAY(SELECT DISTINCT certificate_id FROM page_changes "
    "WHERE tx >= :cursor AND certificate_id IS NOT NULL), "
    "EXISTS (SELECT 1 FROM page_changes WHERE tx >= :cursor AND certificate_id IS NULL)"
)
_PG_START = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True, slots=True)
class PageChanges:
    """What changed since a cursor, and the cursor to read from next."""

    cursor: int
    certificates: frozenset[int]
    every: bool  # a change reaching every page (a market's name, a subject, a key)


def changes_since(conn: Connection, cursor: int | None) -> PageChanges:
    """Return the pages changed since cursor (None: only where the feed stands now)."""
    if conn.dialect.name == "postgresql":
        if cursor is None:
            return PageChanges(int(conn.execute(_PG_START).scalar_one()), frozenset(), False)
        row = conn.execute(_PG_READ, {"cursor": cursor}).one()
        return PageChanges(int(row[0]), frozenset(row[1]), bool(row[2]))
    if cursor is None:
        last = conn.execute(select(func.max(PageChange.id))).scalar()
        return PageChanges(int(last or 0), frozenset(), False)
    rows = conn.execute(
        select(PageChange.id, PageChange.certificate_id).where(PageChange.id > cursor)
    ).all()
    ids = {certificate for _, certificate in rows}
    last = max((row_id for row_id, _ in rows), default=cursor)
    return PageChanges(last, frozenset(i for i in ids if i is not None), None in ids)


def prune(conn: Connection, before_s: float) -> int:
    """Delete the rows logged before before_s (Unix seconds); returns how many."""
    return conn.execute(delete(PageChange).where(PageChange.at_s < before_s)).rowcount or 0


def read_changes(reader: Engine, cursor: int | None, prune_before_s: float | None) -> PageChanges:
    """Read the feed on an autocommit connection of reader, pruning old rows first if asked."""
    with reader.connect() as conn:
        if prune_before_s is not None:
            prune(conn, prune_before_s)
        return changes_since(conn, cursor)
