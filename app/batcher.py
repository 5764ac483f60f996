"""The batcher: one bounded queue for every request, and model workers that take batches from it.

It knows nothing of models or HTTP: it batches opaque payloads by their length (positions a row
takes), under a row limit, a padded-token limit and a padding budget, grouping similar lengths
around the oldest waiting row (so nothing starves; app/grouping.py). Each row has a future. A
batch that fails is run again row by row, so that a row that cannot be computed fails alone
instead of failing every request that shared its batch.

Each model worker is a thread that takes its next batch from the queue itself, the moment it is
free: handing batches over through the event loop left the model idle for a few milliseconds a
batch whenever the loop was busy with HTTP (BENCHMARKS.md). The queue (app/row_queue.py) is
shared under a lock; futures are touched on the event loop only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.batch_types import Admission, BatchLimits, BatchObserver, BatchStats
from app.errors import DeadlineExceeded, Overloaded, ShuttingDown
from app.row_queue import QueuedRow, RowQueue

log = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")


_Chore = tuple[Callable[[], object], "concurrent.futures.Future[object]"]


@dataclass
class _Taken(Generic[P]):
    batch: list[QueuedRow[P]]
    expired: list[QueuedRow[P]]  # found past their deadline while taking it


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
        self._worker_init = worker_init
        self._queue: RowQueue[P] = RowQueue(limits)
        # The queue's lock also guards each worker's batch in progress and its chores; its
        # condition wakes a worker for rows, a chore, or closing.
        self._changed = self._queue.changed
        self._computing: dict[int, list[QueuedRow[P]]] = {}
        self._chores: list[list[_Chore]] = [[] for _ in range(limits.workers)]
        self._admitted = 0  # places held by Admissions: requests whose rows are not queued yet
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def depth(self) -> int:
        """Rows waiting (not counting the batches being computed)."""
        return len(self._queue)

    @property
    def admitted(self) -> int:
        """Places held for requests admitted at the door whose rows are not queued yet."""
        return self._admitted

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), name=f"model-worker-{i}", daemon=True)
            for i in range(self.limits.workers)
        ]
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            pending = self._queue.drain()
            computing = [item for batch in self._computing.values() for item in batch]
        for item in pending:
            _fail(item, ShuttingDown("the server is shutting down"))
        for item in computing:  # their forward may finish, but nobody waits for it
            _fail(item, ShuttingDown("the server stopped while computing this request"))
        for thread in self._threads:  # waits for a forward in progress, off the event loop
            await asyncio.to_thread(thread.join)

    async def call_in_workers(self, fn: Callable[[], object]) -> list[object]:
        """Run `fn` once on each worker thread (a warm-up: thread-local state is born there)."""
        futures: list[concurrent.futures.Future[object]] = []
        with self._changed:
            for chores in self._chores:
                futures.append(concurrent.futures.Future())
                chores.append((fn, futures[-1]))
            self._changed.notify_all()
        return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))

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
        self.check_room(len(payloads))
        if admission is not None:
            admission.release()
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        items = [
            QueuedRow(payload, length, now + timeout_s, now, loop.create_future())
            for payload, length in zip(payloads, lengths, strict=True)
        ]
        self._queue.put(items)
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
        return self.depth + self._admitted >= self.limits.queue_limit

    def check_room(self, rows: int) -> None:
        """Raise at once if `rows` more rows would not fit in the queue (before any work on them).
        Door places are not rows: counted as rows, they refused a whole burst of large requests
        on an empty queue. `submit` checks and queues in one step: never over `queue_limit`."""
        if self._closed:
            raise ShuttingDown("the server is shutting down")
        if self.depth + rows > self.limits.queue_limit:
            raise Overloaded(f"queue full ({self.limits.queue_limit} rows waiting)")

    def _withdraw(self, items: list[QueuedRow[P]]) -> int:
        """Take a request's unresolved rows out of the queue now; return how many were queued.

        Without this, a departed client's rows would hold queue places (and count in `depth`)
        until a worker next looked at the queue. A row already in a batch is computed anyway.
        """
        for item in items:
            item.future.cancel()  # no-op for resolved rows
        # A row with a result or an error has left the queue already; a cancelled one (by this,
        # or by the caller's own cancellation, which reaches each future) may still be in it.
        gone = [item for item in items if item.future.cancelled()]
        return self._queue.withdraw(gone) if gone else 0

    # --- on the worker threads -------------------------------------------------------------

    def _worker(self, index: int) -> None:
        if self._worker_init is not None:
            try:
                self._worker_init()
            except Exception:  # thread settings are an optimisation: serve without them
                log.exception("model worker %d: its thread setup failed; serving anyway", index)
        while True:
            with self._changed:
                work = self._next_work(index)
            if work is None:
                return
            if isinstance(work, _Taken):
                if work.expired:
                    self._to_loop(self._expire, work.expired)
                if work.batch:
                    self._compute(index, work.batch)
            else:
                _run_chore(*work)

    def _next_work(self, index: int) -> _Chore | _Taken[P] | None:
        """Under the lock: wait for a chore or a batch (with the rows found expired), or None
        once closed."""
        limits = self.limits
        while not self._closed:
            if self._chores[index]:
                return self._chores[index].pop(0)
            if not self._queue:
                self._changed.wait()
                continue
            now = time.monotonic()
            grow_for = self._queue.oldest_enqueued() + limits.max_wait_s - now
            if len(self._queue) < limits.max_batch_size and grow_for > 0:
                self._changed.wait(grow_for)  # max_wait_s: give a small batch time to grow
                continue
            batch, expired = self._queue.take(now)
            if batch:
                self._computing[index] = batch
            if batch or expired:
                return _Taken(batch, expired)
        return None

    def _compute(self, index: int, batch: list[QueuedRow[P]]) -> None:
        started, clock = time.monotonic(), time.perf_counter()
        payloads = [item.payload for item in batch]
        forward_s: float | None = None  # stays None for a failed batch: not observed
        try:
            results: Sequence[R | BaseException] = self._run_batch(payloads)
            forward_s = time.perf_counter() - clock
        except Exception as exc:
            results = self._row_by_row(payloads, exc)
        with self._changed:
            self._computing.pop(index, None)
        self._to_loop(self._deliver, batch, results, started, forward_s)

    def _row_by_row(self, payloads: list[P], exc: Exception) -> list[R | BaseException]:
        """After a batch failed: each row alone, so each row gets its own result or error."""
        if len(payloads) == 1:
            return [exc]
        log.warning("a batch of %d rows failed (%s); rerunning them one by one", len(payloads), exc)
        results: list[R | BaseException] = []
        for payload in payloads:
            try:
                results.extend(self._run_batch([payload]))
            except Exception as row_exc:
                results.append(row_exc)
        return results

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(callback, *args)

    # --- back on the event loop ------------------------------------------------------------

    def _expire(self, items: list[QueuedRow[P]]) -> None:
        for item in items:
            _fail(item, DeadlineExceeded("deadline passed while queued"))
        if self._observer is not None:
            self._observer.expired(len(items))

    def _deliver(
        self,
        batch: list[QueuedRow[P]],
        results: Sequence[R | BaseException],
        started: float,
        forward_s: float | None,
    ) -> None:
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                _fail(item, result)
            elif not item.future.done():
                item.future.set_result(result)
        if self._observer is not None and forward_s is not None:
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


def _run_chore(fn: Callable[[], object], future: concurrent.futures.Future[object]) -> None:
    try:
        future.set_result(fn())
    except BaseException as exc:  # handed to the caller on the event loop
        future.set_exception(exc)


def _fail(item: QueuedRow, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
