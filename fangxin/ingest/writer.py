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

B = TypeVar("B")


class BatchWriter(threading.Thread, Generic[B]):
    """Runs store() on each submitted batch in order; stored batches wait in take_stored()."""

    def __init__(self, store: Callable[[B], None], wake: Callable[[], None]) -> None:
        """Store with store(batch); call wake() (any thread) when a batch is stored or failed."""
        super().__init__(name="fangxin-writer", daemon=True)
        self._store = store
        self._wake = wake
        self._todo: queue.SimpleQueue[B | None] = queue.SimpleQueue()
        self._stored: deque[B] = deque()
        self._error: BaseException | None = None
        self._ready = threading.Event()  # set when a batch is stored or failed
        # Batches handed over and not yet taken back (touched by the network thread only).
        self.outstanding = 0

    def submit(self, batch: B) -> None:
        """Queue a batch behind those submitted before it."""
        self.outstanding += 1
        self._todo.put(batch)

    def take_stored(self) -> list[B]:
        """Return the batches stored since the last call, in order; re-raise a store's failure."""
        self._ready.clear()  # before draining: a batch stored from here on sets it again
        out = []
        while self._stored:
            out.append(self._stored.popleft())
        self.outstanding -= len(out)
        if self._error is not None:
            raise self._error
        return out

    def wait_stored(self, timeout_s: float) -> None:
        """Wait until a batch is stored (or failed) since the last take_stored(), or timeout_s."""
        self._ready.wait(timeout_s)

    def run(self) -> None:
        """Store batches until close()."""
        while (batch := self._todo.get()) is not None:
            try:
                self._store(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the network thread to raise
                self._error = exc
                self._ready.set()
                self._wake()
                return
            self._stored.append(batch)
            self._ready.set()
            self._wake()

    def close(self) -> None:
        """Finish what was submitted, then end the thread."""
        self._todo.put(None)
        if self.is_alive():
            self.join()
