"""The batcher alone, driven deterministically with asyncio and a fake batch function."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from app.batch_types import BatchLimits, BatchStats
from app.batcher import Batcher
from app.errors import DeadlineExceeded, Overloaded


class Recorder:
    """A batch function that records each batch and can be held busy until released."""

    def __init__(self, fail: Callable[[list[str]], bool] = lambda batch: False) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail = fail

    def __call__(self, payloads: list[str]) -> list[str]:
        self.release.wait(5)
        self.batches.append(list(payloads))
        if self.fail(payloads):
            raise RuntimeError("model exploded")
        return [p.upper() for p in payloads]


class Observer:
    def __init__(self) -> None:
        self.stats: list[BatchStats] = []
        self.expired_rows = 0

    def batch_done(self, stats: BatchStats) -> None:
        self.stats.append(stats)

    def expired(self, rows: int) -> None:
        self.expired_rows += rows


def run(
    coro_fn: Callable, recorder: Recorder, observer: Observer | None = None, **limits: float
) -> object:
    async def main() -> object:
        batcher: Batcher[str, str] = Batcher(recorder, BatchLimits(**limits), observer)  # type: ignore[arg-type]
        batcher.start()
        try:
            return await coro_fn(batcher)
        finally:
            await batcher.stop()

    return asyncio.run(main())


async def hold_worker(batcher: Batcher, recorder: Recorder) -> asyncio.Task:
    """Occupy the worker with one batch so that later submissions queue up behind it."""
    recorder.release.clear()
    blocker = asyncio.ensure_future(batcher.submit(["block"], [1], 10))
    while not recorder.batches and batcher.depth:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)
    return blocker


def test_each_request_gets_its_own_results_in_order() -> None:
    recorder = Recorder()

    async def scenario(batcher: Batcher) -> list:
        requests = [[f"r{i}-{j}" for j in range(i % 4 + 1)] for i in range(20)]
        results = await asyncio.gather(
            *(batcher.submit(r, [len(x) for x in r], 5) for r in requests)
        )
        return list(zip(requests, results, strict=True))

    for request, result in run(scenario, recorder, max_batch_size=8):  # type: ignore[union-attr]
        assert result == [x.upper() for x in request]


def test_batches_respect_row_and_token_limits() -> None:
    recorder, observer = Recorder(), Observer()

    async def scenario(batcher: Batcher) -> None:
        blocker = await hold_worker(batcher, recorder)
        lengths = [5, 40, 7, 33, 12, 60, 3, 25, 18, 9] * 3
        waiting = [batcher.submit([f"x{i}"], [n], 5) for i, n in enumerate(lengths)]
        tasks = [asyncio.ensure_future(w) for w in waiting]
        await asyncio.sleep(0.01)
        recorder.release.set()
        await asyncio.gather(blocker, *tasks)

    run(scenario, recorder, observer, max_batch_size=4, max_batch_tokens=100)
    assert sum(s.rows for s in observer.stats) == 31
    for stats in observer.stats:
        assert stats.rows <= 4
        assert stats.padded_tokens <= 100 or stats.rows == 1


def test_rows_of_similar_length_are_grouped() -> None:
    recorder, observer = Recorder(), Observer()

    async def scenario(batcher: Batcher) -> None:
        blocker = await hold_worker(batcher, recorder)
        lengths = [10, 100, 11, 101, 12, 102, 13, 103]
        tasks = [asyncio.ensure_future(batcher.submit([f"x{n}"], [n], 5)) for n in lengths]
        await asyncio.sleep(0.01)
        recorder.release.set()
        await asyncio.gather(blocker, *tasks)

    run(scenario, recorder, observer, max_batch_size=4)
    groups = sorted(sorted(int(p[1:]) for p in batch) for batch in recorder.batches[1:])
    assert groups == [[10, 11, 12, 13], [100, 101, 102, 103]]


def test_full_queue_rejects_at_once() -> None:
    recorder = Recorder()

    async def scenario(batcher: Batcher) -> None:
        blocker = await hold_worker(batcher, recorder)
        queued = asyncio.ensure_future(batcher.submit(["a", "b"], [1, 1], 5))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):
            await batcher.submit(["c"], [1], 5)  # 2 waiting + 1 > limit of 2
        recorder.release.set()
        assert await queued == ["A", "B"]
        await blocker

    run(scenario, recorder, queue_limit=2)


def test_request_past_its_deadline_is_not_computed() -> None:
    recorder, observer = Recorder(), Observer()

    async def scenario(batcher: Batcher) -> None:
        blocker = await hold_worker(batcher, recorder)
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(["late"], [1], 0.05)
        recorder.release.set()
        await blocker
        assert await batcher.submit(["next"], [1], 5) == ["NEXT"]

    run(scenario, recorder, observer)
    assert all("late" not in batch for batch in recorder.batches)


def test_cancelled_request_is_dropped_from_the_queue() -> None:
    recorder = Recorder()

    async def scenario(batcher: Batcher) -> None:
        blocker = await hold_worker(batcher, recorder)
        gone = asyncio.ensure_future(batcher.submit(["gone"], [1], 5))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client disconnected
        await asyncio.sleep(0.01)
        recorder.release.set()
        await blocker
        assert await batcher.submit(["kept"], [1], 5) == ["KEPT"]

    run(scenario, recorder)
    assert all("gone" not in batch for batch in recorder.batches)


def test_a_failing_batch_fails_its_rows_and_the_worker_goes_on() -> None:
    recorder = Recorder(fail=lambda batch: "bad" in batch)

    async def scenario(batcher: Batcher) -> None:
        with pytest.raises(RuntimeError, match="model exploded"):
            await batcher.submit(["bad"], [1], 5)
        assert await batcher.submit(["good"], [1], 5) == ["GOOD"]

    run(scenario, recorder)


def test_a_row_that_fails_its_batch_fails_alone() -> None:
    """Regression: one uncomputable row (e.g. past the backbone's positions) used to fail every
    request that shared its batch with a 500."""
    recorder = Recorder(fail=lambda batch: "bad" in batch)

    async def scenario(batcher: Batcher) -> list[object]:
        bad = asyncio.ensure_future(batcher.submit(["bad"], [1], 5))
        good = asyncio.ensure_future(batcher.submit(["good"], [1], 5))
        return await asyncio.gather(bad, good, return_exceptions=True)

    bad, good = run(scenario, recorder, max_wait_s=0.2, max_batch_size=2)  # type: ignore[misc]
    assert recorder.batches[0] == ["bad", "good"]  # they did share a batch
    assert isinstance(bad, RuntimeError)
    assert good == ["GOOD"]


def test_idle_worker_runs_a_lone_request_without_waiting() -> None:
    recorder = Recorder()

    async def scenario(batcher: Batcher) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.submit(["solo"], [1], 5)
        return loop.time() - start

    assert run(scenario, recorder) < 0.05  # type: ignore[operator]


def test_max_wait_lets_a_batch_fill() -> None:
    recorder = Recorder()

    async def scenario(batcher: Batcher) -> None:
        first = asyncio.ensure_future(batcher.submit(["a"], [1], 5))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(batcher.submit(["b"], [1], 5))
        await asyncio.gather(first, second)

    run(scenario, recorder, max_wait_s=0.2, max_batch_size=2)
    assert recorder.batches == [["a", "b"]]
