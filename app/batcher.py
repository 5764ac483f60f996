"""The batcher: one bounded queue for every request, and one worker that forms batches from it.

It knows nothing of models or HTTP: it batches opaque payloads by their length (positions a row
takes), under a row limit and a padded-token limit, grouping similar lengths around the oldest
waiting row (so nothing starves). Each row has a future; a failed batch fails every one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from app.errors import DeadlineExceeded, Overloaded, ShuttingDown

P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 32
    max_batch_tokens: int = 4096
    max_wait_s: float = 0.0
    queue_limit: int = 256
    workers: int = 1  # batches computed at once, each on its own thread


@dataclass(frozen=True)
class BatchStats:
    rows: int
    padded_tokens: int  # rows x longest row: what the forward computes
    real_tokens: int
    forward_s: float
    queue_waits_s: list[float]


class BatchObserver(Protocol):
    def batch_done(self, stats: BatchStats) -> None: ...

    def expired(self, rows: int) -> None: ...


class Admission:
    """One queue place held for a request admitted before its rows are known (body unread).

    Without it, every request that arrives while the queue has a little room is parsed and
    tokenized before the exact check refuses it: under overload that wasted work is what starves
    the event loop. Released when the request's rows are queued, or when the request ends.
    """

    def __init__(self, on_release: Callable[[], None]) -> None:
        self._on_release = on_release
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._on_release()


@dataclass(eq=False)
class _Item(Generic[P]):
    payload: P
    length: int
    deadline: float
    enqueued: float
    future: asyncio.Future = field(repr=False)


class Batcher(Generic[P, R]):
    """`run_batch(payloads) -> results` runs on `limits.workers` threads, one batch on each."""

    def __init__(
        self,
        run_batch: Callable[[list[P]], Sequence[R]],
        limits: BatchLimits,
        observer: BatchObserver | None = None,
        worker_init: Callable[[], None] | None = None,
    ) -> None:
        self._run_batch = run_batch
        self.limits = limits
        self._observer = observer
        self._pending: list[_Item[P]] = []
        self._admitted = 0  # places held by Admissions: requests whose rows are not queued yet
        self._arrived = asyncio.Event()
        self._executors = [
            ThreadPoolExecutor(1, thread_name_prefix=f"model-worker-{i}", initializer=worker_init)
            for i in range(limits.workers)
        ]
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def depth(self) -> int:
        """Rows waiting (not counting the batch being computed)."""
        return len(self._pending)

    @property
    def admitted(self) -> int:
        """Places held for requests admitted at the door whose rows are not queued yet."""
        return self._admitted

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._work(executor), name=f"batcher-{i}")
            for i, executor in enumerate(self._executors)
        ]

    async def stop(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for item in self._pending:
            _fail(item, ShuttingDown("the server is shutting down"))
        self._pending.clear()
        for executor in self._executors:  # waits for a forward in progress, off the event loop
            await asyncio.to_thread(executor.shutdown, True)

    async def call_in_workers(self, fn: Callable[[], object]) -> list[object]:
        """Run `fn` once on each worker thread (a warm-up: thread pools are born there)."""
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(ex, fn) for ex in self._executors)))

    def admit(self) -> Admission | None:
        """Hold one place for a request about to be read, or None when there is none to hold."""
        if self._closed or self.full:
            return None
        self._admitted += 1
        return Admission(self._release_place)

    def _release_place(self) -> None:
        self._admitted -= 1

    async def submit(
        self,
        payloads: Sequence[P],
        lengths: Sequence[int],
        timeout_s: float,
        admission: Admission | None = None,
    ) -> list[R]:
        """Queue rows together (all admitted or none) and wait for their results, in order.

        Raises Overloaded at once when the queue is full, DeadlineExceeded after `timeout_s`.
        Cancelling the caller drops its rows that are still queued. The request's `admission`,
        if it has one, is released as its rows take their places.
        """
        self.check_room(len(payloads), admission)
        if admission is not None:
            admission.release()
        loop = asyncio.get_running_loop()
        now = loop.time()
        items = [
            _Item(payload, length, now + timeout_s, now, loop.create_future())
            for payload, length in zip(payloads, lengths, strict=True)
        ]
        self._pending.extend(items)
        self._arrived.set()
        try:
            async with asyncio.timeout(timeout_s):
                return list(await asyncio.gather(*(item.future for item in items)))
        except TimeoutError:
            unrun = self._withdraw(items)
            if unrun and self._observer is not None:
                self._observer.expired(unrun)
            raise DeadlineExceeded(f"no result within the deadline of {timeout_s:g}s") from None
        finally:
            self._withdraw(items)  # the caller left (cancelled, or another row failed)

    @property
    def full(self) -> bool:
        """No request can be admitted now (not even one of a single row)."""
        return len(self._pending) + self._admitted >= self.limits.queue_limit

    def check_room(self, rows: int, admission: Admission | None = None) -> None:
        """Raise at once if `rows` more rows would not be admitted (before any work on them).

        The place `admission` holds (if still held) counts as the request's own."""
        if self._closed:
            raise ShuttingDown("the server is shutting down")
        own = 1 if admission is not None and admission.held else 0
        if len(self._pending) + self._admitted - own + rows > self.limits.queue_limit:
            raise Overloaded(f"queue full ({self.limits.queue_limit} rows waiting)")

    def _withdraw(self, items: list[_Item[P]]) -> int:
        """Take a request's unresolved rows out of the queue now; return how many were queued.

        Without this, a departed client's rows would hold queue places (and count in `depth`)
        until a worker next looked at the queue. A row already in a batch is computed anyway.
        """
        for item in items:
            item.future.cancel()  # no-op for resolved rows
        # A row with a result or an error has left the queue already; a cancelled one (by this,
        # or by the caller's own cancellation, which reaches each future) may still be in it.
        if not any(item.future.cancelled() for item in items):
            return 0
        mine = set(map(id, items))
        before = len(self._pending)
        self._pending = [item for item in self._pending if id(item) not in mine]
        return before - len(self._pending)

    async def _work(self, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            await self._maybe_wait_for_more(loop)
            batch = self._take_batch(loop.time())
            if self._pending:
                self._arrived.set()
            else:
                self._arrived.clear()
            if batch:
                await self._run(batch, loop, executor)

    async def _maybe_wait_for_more(self, loop: asyncio.AbstractEventLoop) -> None:
        """With max_wait_s set, give a small batch up to that long (from its oldest row) to grow."""
        limits = self.limits
        while (
            self._pending and len(self._pending) < limits.max_batch_size and limits.max_wait_s > 0
        ):
            remaining = self._pending[0].enqueued + limits.max_wait_s - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _take_batch(self, now: float) -> list[_Item[P]]:
        """Drop dead rows, then pick the oldest row and those closest to it in length."""
        live: list[_Item[P]] = []
        expired = 0
        for item in self._pending:
            if item.future.done():
                continue  # cancelled: its client left or timed out
            if item.deadline <= now:
                _fail(item, DeadlineExceeded("deadline passed while queued"))
                expired += 1
                continue
            live.append(item)
        if expired and self._observer is not None:
            self._observer.expired(expired)
        if not live:
            self._pending = []
            return []
        anchor, rest = live[0], live[1:]
        rest.sort(key=lambda item: abs(item.length - anchor.length))
        batch, longest = [anchor], anchor.length
        for item in rest:
            if len(batch) == self.limits.max_batch_size:
                break
            new_longest = max(longest, item.length)
            if new_longest * (len(batch) + 1) <= self.limits.max_batch_tokens:
                batch.append(item)
                longest = new_longest
        chosen = set(map(id, batch))
        self._pending = [item for item in live if id(item) not in chosen]
        return batch

    async def _run(
        self, batch: list[_Item[P]], loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor
    ) -> None:
        started = loop.time()
        payloads = [item.payload for item in batch]
        clock = time.perf_counter()
        try:
            results = await loop.run_in_executor(executor, self._run_batch, payloads)
        except asyncio.CancelledError:  # stopping mid-batch: its rows must not wait for a result
            for item in batch:
                _fail(item, ShuttingDown("the server stopped while computing this request"))
            raise
        except Exception as exc:  # the whole batch failed: every row learns why
            for item in batch:
                _fail(item, exc)
            return
        forward_s = time.perf_counter() - clock
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)
        if self._observer is not None:
            lengths = [item.length for item in batch]
            self._observer.batch_done(
                BatchStats(
                    rows=len(batch),
                    padded_tokens=max(lengths) * len(batch),
                    real_tokens=sum(lengths),
                    forward_s=forward_s,
                    queue_waits_s=[started - item.enqueued for item in batch],
                )
            )


def _fail(item: _Item, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
