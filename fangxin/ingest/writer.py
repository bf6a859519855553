"""The ingester's write thread: batches stored one at a time, in order, while the loop reads on.

Waiting on the database (a PostgreSQL round trip, a commit) releases the GIL, so the network
thread reads and stamps the next batch meanwhile instead of idling. Acks stay with the network
thread: it takes back the stored batches, in the order it handed them over, and acks them.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchWriter(threading.Thread, Generic[T]):
    """Runs store() on each submitted batch in order; stored batches wait in take_stored()."""

    def __init__(self, store: Callable[[list[T]], None], wake: Callable[[], None]) -> None:
        """Store with store(batch); call wake() (any thread) when a batch is stored or failed."""
        super().__init__(name="fangxin-writer", daemon=True)
        self._store = store
        self._wake = wake
        self._todo: queue.SimpleQueue[list[T] | None] = queue.SimpleQueue()
        self._stored: deque[list[T]] = deque()
        self._error: BaseException | None = None
        # Batches handed over and not yet taken back (touched by the network thread only).
        self.outstanding = 0

    def submit(self, batch: list[T]) -> None:
        """Queue a batch behind those submitted before it."""
        self.outstanding += 1
        self._todo.put(batch)

    def take_stored(self) -> list[list[T]]:
        """Return the batches stored since the last call, in order; re-raise a store's failure."""
        out = []
        while self._stored:
            out.append(self._stored.popleft())
        self.outstanding -= len(out)
        if self._error is not None:
            raise self._error
        return out

    def run(self) -> None:
        """Store batches until close()."""
        while (batch := self._todo.get()) is not None:
            try:
                self._store(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the network thread to raise
                self._error = exc
                self._wake()
                return
            self._stored.append(batch)
            self._wake()

    def close(self) -> None:
        """Finish what was submitted, then end the thread."""
        self._todo.put(None)
        if self.is_alive():
            self.join()
