"""The ingester's write thread: batches stored in submission order, failures handed back."""

from __future__ import annotations

import threading

import pytest

from fangxin.ingest.writer import BatchWriter


def test_batches_come_back_stored_in_the_order_submitted() -> None:
    held = threading.Event()
    stored: list[list[int]] = []
    woken = threading.Semaphore(0)

    def store(batch: list[int]) -> None:
        held.wait(30)  # the first write takes its time: the others queue behind it
        stored.append(batch)

    writer: BatchWriter[list[int]] = BatchWriter(store, woken.release)
    writer.start()
    for batch in ([1, 2], [3], [4, 5]):
        writer.submit(batch)
    assert writer.take_stored() == []  # nothing is acked before its write is done
    assert writer.outstanding == 3
    held.set()
    back: list[list[int]] = []
    while len(back) < 3:
        assert woken.acquire(timeout=30), "the writer did not wake the network thread"
        back += writer.take_stored()
    writer.close()
    assert back == stored == [[1, 2], [3], [4, 5]]
    assert writer.outstanding == 0


def test_a_failed_store_is_raised_to_the_network_thread_and_nothing_after_it_is_stored() -> None:
    woken = threading.Event()
    stored: list[list[str]] = []

    def store(batch: list[str]) -> None:
        if batch == ["bad"]:
            raise RuntimeError("disk full")
        stored.append(batch)

    writer: BatchWriter[list[str]] = BatchWriter(store, woken.set)
    for batch in (["ok"], ["bad"], ["later"]):
        writer.submit(batch)
    writer.start()
    assert woken.wait(30)
    writer.join(30)
    with pytest.raises(RuntimeError, match="disk full"):
        writer.take_stored()
    assert stored == [["ok"]]
