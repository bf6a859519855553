"""A durable FIFO of line-protocol lines in a SQLite file, for when InfluxDB cannot take them."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_lines (
    -- AUTOINCREMENT: a sequence number is never reused, so FIFO order survives full drains.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL
)
"""


class Spool:
    """Line-protocol lines kept in order on disk; an append that returned survives a crash."""

    def __init__(self, path: Path | str) -> None:
        """Open (or create) the spool file."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared under a lock: the ingester appends, the replay thread drains.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL (not NORMAL): the WAL is fsynced on every commit, so a returned append is on disk
        # even after a power cut; the MQTT message behind it is acknowledged right after.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)
        row = self._conn.execute("SELECT COUNT(*) FROM spooled_lines").fetchone()
        self._depth = int(row[0])
        if self._depth:
            _LOGGER.info("Spool %s holds %d lines from before", self.path, self._depth)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"spool {self.path} is closed")
        return self._conn

    def append(self, lines: Sequence[str]) -> None:
        """Append lines at the tail in one transaction; durable when this returns."""
        if not lines:
            return
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO spooled_lines (line) VALUES (?)", [(line,) for line in lines]
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._depth += len(lines)

    def peek(self, n: int) -> list[tuple[int, str]]:
        """Return up to n (seq, line) pairs, oldest first, without removing them."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT seq, line FROM spooled_lines ORDER BY seq LIMIT ?", (n,)
            )
            return [(int(seq), str(line)) for seq, line in rows]

    def delete_through(self, seq: int) -> int:
        """Remove every line up to and including seq; return how many went."""
        with self._lock:
            cursor = self._connection().execute("DELETE FROM spooled_lines WHERE seq <= ?", (seq,))
            self._depth -= cursor.rowcount
            return cursor.rowcount

    def delete(self, seqs: Iterable[int]) -> int:
        """Remove the given lines; return how many went."""
        params = [(seq,) for seq in seqs]
        if not params:
            return 0
        with self._lock:
            conn = self._connection()
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM spooled_lines WHERE seq = ?", params)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            removed = conn.total_changes - before
            self._depth -= removed
            return removed

    def depth(self) -> int:
        """Return how many lines wait in the spool."""
        with self._lock:
            return self._depth

    def close(self) -> None:
        """Close the file; later calls raise."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
