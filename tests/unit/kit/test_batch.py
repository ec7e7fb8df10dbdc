"""Group commit: one write per flush, waiters released together, nothing dropped."""

from __future__ import annotations

import asyncio

import pytest

from chatplane.kit.batch import BatchWriter


class Sink:
    def __init__(self, delay: float = 0.0, failures: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.failures = failures
        self.started = asyncio.Event()

    async def __call__(self, batch: list[int]) -> None:
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise OSError("database down")
        self.batches.append(list(batch))


async def test_an_idle_writer_writes_one_item_at_once() -> None:
    sink = Sink()
    writer = BatchWriter(sink, name="t")
    await writer.write(1)
    assert sink.batches == [[1]]  # stored before write() returned
    await writer.aclose()


async def test_items_arriving_during_a_flush_ride_the_next_one_together() -> None:
    sink = Sink(delay=0.05)
    writer = BatchWriter(sink, name="t")
    first = asyncio.create_task(writer.write(0))
    await sink.started.wait()  # the first flush is running
    released: list[int] = []

    async def call(i: int) -> None:
        await writer.write(i)
        released.append(i)

    await asyncio.gather(first, *(call(i) for i in range(1, 21)))
    assert sink.batches == [[0], list(range(1, 21))]  # one batch per flush
    assert sorted(released) == list(range(1, 21))
    assert writer.batches == 2 and writer.rows == 21
    await writer.aclose()


async def test_record_does_not_wait_and_flush_does() -> None:
    sink = Sink(delay=0.01)
    writer = BatchWriter(sink, name="t")
    for i in range(5):
        writer.record(i)
    assert sink.batches == []
    await writer.flush()
    assert [i for b in sink.batches for i in b] == list(range(5))
    await writer.aclose()


async def test_a_failed_batch_fails_its_waiters_and_is_retried() -> None:
    sink = Sink(failures=1)
    writer = BatchWriter(sink, name="t", retry_delay=0.01)
    with pytest.raises(OSError):
        await writer.write(7)
    await writer.flush()
    await asyncio.sleep(0.05)
    assert sink.batches == [[7]]  # kept and stored on the retry, never dropped
    await writer.aclose()


async def test_close_stores_everything_and_refuses_more() -> None:
    sink = Sink(delay=0.01)
    writer = BatchWriter(sink, name="t")
    for i in range(3):
        writer.record(i)
    await writer.aclose()
    assert [i for b in sink.batches for i in b] == [0, 1, 2]
    with pytest.raises(RuntimeError):
        writer.record(3)


async def test_a_caller_that_goes_away_does_not_cancel_the_batch() -> None:
    sink = Sink(delay=0.05)
    writer = BatchWriter(sink, name="t")
    task = asyncio.create_task(writer.write(1))
    await sink.started.wait()
    task.cancel()
    await writer.flush()
    assert sink.batches == [[1]]
    await writer.aclose()
