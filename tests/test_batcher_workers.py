"""The batcher's model worker threads: several at once, stopping mid-batch, admissions, taking
batches without the event loop, and a worker whose thread setup fails."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.batch_types import BatchLimits
from app.batcher import Batcher
from app.errors import Overloaded, ShuttingDown
from tests.test_batcher import Recorder, hold_worker, run


def test_several_workers_compute_batches_at_once() -> None:
    """With workers=2, a second batch runs while the first is still being computed."""
    running, peak, lock = 0, 0, threading.Lock()
    both_in = threading.Barrier(2, timeout=5)

    def run_batch(payloads: list[str]) -> list[str]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        both_in.wait()  # only returns if two batches are in flight together
        with lock:
            running -= 1
        return [p.upper() for p in payloads]

    async def scenario() -> list:
        batcher: Batcher[str, str] = Batcher(run_batch, BatchLimits(max_batch_size=1, workers=2))
        batcher.start()
        try:
            both = (batcher.submit(["a"], [1], 5), batcher.submit(["b"], [1], 5))
            return await asyncio.gather(*both)
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) == [["A"], ["B"]]
    assert peak == 2


def test_stopping_mid_batch_fails_its_rows_instead_of_leaving_them_waiting() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_batch(payloads: list[str]) -> list[str]:
        entered.set()
        release.wait(5)
        return payloads

    async def scenario() -> None:
        batcher: Batcher[str, str] = Batcher(slow_batch, BatchLimits())
        batcher.start()
        waiting = asyncio.ensure_future(batcher.submit(["x"], [1], 30))
        while not entered.is_set():  # the row is now inside the worker, not in the queue
            await asyncio.sleep(0.001)
        stopping = asyncio.ensure_future(batcher.stop())
        with pytest.raises(ShuttingDown):
            await asyncio.wait_for(waiting, 1)  # well before its 30 s deadline
        release.set()
        await stopping

    asyncio.run(scenario())


def test_admissions_hold_places_until_their_rows_are_queued() -> None:
    """A request admitted at the door (body unread) holds one place: requests arriving meanwhile
    are refused at once instead of being parsed and tokenized only to be refused later."""
    recorder = Recorder()

    async def scenario(batcher: Batcher) -> None:
        running = await hold_worker(batcher, recorder)
        first, second = batcher.admit(), batcher.admit()
        assert first is not None and second is not None
        assert batcher.full and batcher.admit() is None  # 0 queued + 2 admitted = the limit
        # Door places are not rows: the empty queue has room for 2 rows, not for 3.
        batcher.check_room(2)
        with pytest.raises(Overloaded):
            batcher.check_room(3)
        queued = asyncio.create_task(batcher.submit(["a"], [1], 5, first))
        await asyncio.sleep(0)
        assert not first.held and batcher.depth == 1 and batcher.full  # the place became a row
        second.release()
        second.release()  # idempotent: a request that ends releases whatever it still holds
        assert not batcher.full
        third = batcher.admit()
        assert third is not None and batcher.admit() is None
        third.release()
        recorder.release.set()
        assert await queued == ["A"]
        await running

    run(scenario, recorder, queue_limit=2)


def test_a_burst_of_large_requests_on_an_empty_queue_is_not_all_refused() -> None:
    """Regression (README check): with door places counted as rows, three 4-row requests
    admitted together on an empty 4-row queue each saw the others' places, and all three got
    503 although the queue had room for each in turn."""
    recorder = Recorder()

    async def scenario(batcher: Batcher) -> list[object]:
        places = [batcher.admit() for _ in range(3)]
        assert all(place is not None for place in places)
        calls = [batcher.submit(["x"] * 4, [1] * 4, 5, place) for place in places]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = run(scenario, recorder, queue_limit=4)
    assert ["X"] * 4 in outcomes  # type: ignore[operator]
    assert all(o == ["X"] * 4 or isinstance(o, Overloaded) for o in outcomes)  # type: ignore[union-attr]


def test_a_free_worker_takes_its_next_batch_without_the_event_loop() -> None:
    """A worker that finishes a batch starts the next at once, even while the event loop is
    busy (here: blocked outright, as a burst of HTTP work would keep it)."""
    second_started = threading.Event()

    def model(rows: list[str]) -> list[str]:
        if rows == ["first"]:
            time.sleep(0.05)
        else:
            second_started.set()
        return [row.upper() for row in rows]

    async def main() -> None:
        batcher: Batcher[str, str] = Batcher(model, BatchLimits(max_batch_size=1, workers=1))
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.submit(["first"], [1], 5))
            second = asyncio.ensure_future(batcher.submit(["second"], [1], 5))
            await asyncio.sleep(0)  # both requests queue their rows
            assert second_started.wait(2), "the second batch waited for the event loop"
            assert await first == ["FIRST"]
            assert await second == ["SECOND"]
        finally:
            await batcher.stop()

    asyncio.run(main())


def test_a_worker_whose_thread_setup_fails_still_serves() -> None:
    def broken_init() -> None:
        raise RuntimeError("no such thread setting")

    async def main() -> list[str]:
        batcher: Batcher[str, str] = Batcher(
            lambda rows: [row.upper() for row in rows], BatchLimits(), worker_init=broken_init
        )
        batcher.start()
        try:
            return await batcher.submit(["a", "b"], [1, 1], 5)
        finally:
            await batcher.stop()

    assert asyncio.run(main()) == ["A", "B"]
