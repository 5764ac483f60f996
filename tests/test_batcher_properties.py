"""Properties of the batcher under random traffic (hypothesis): arrivals, lengths, tasks, prompt
lengths, cancellations, deadlines and failing batches. Whatever happens, every request is resolved
exactly once, with its own results in order or an error it can explain; nothing stays queued; no
batch breaks its limits.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.batch_types import BatchLimits
from app.batcher import Batcher
from app.errors import DeadlineExceeded, Overloaded

LONG_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Row:
    request: int
    index: int
    task: int
    prompt_len: int
    text_len: int
    poison: bool  # the model fails on any batch holding this row

    @property
    def length(self) -> int:
        return self.prompt_len + self.text_len


@dataclass(frozen=True)
class Request:
    rows: tuple[Row, ...]
    arrival_gap_s: float
    timeout_s: float
    cancel_after_s: float | None
    door_s: float | None = None  # admitted at the door, then this long reading its body


class BatchFailed(RuntimeError):
    pass


class Model:
    """Records every batch, answers each row with its own identity, fails on a poisoned row."""

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self.batches: list[list[Row]] = []
        self.lock = threading.Lock()

    def __call__(self, rows: list[Row]) -> list[tuple[int, int]]:
        with self.lock:
            self.batches.append(list(rows))
        time.sleep(0.0002 * len(rows))
        if any(row.poison for row in rows):
            raise BatchFailed("poisoned batch")
        return [(row.request, row.index) for row in rows]


@st.composite
def requests(draw: st.DrawFn) -> list[Request]:
    out = []
    for number in range(draw(st.integers(1, 25))):
        task, prompt_len = draw(st.integers(0, 3)), draw(st.sampled_from([1, 4, 20]))
        rows = tuple(
            Row(number, index, task, prompt_len, draw(st.integers(1, 60)), poison)
            for index in range(draw(st.integers(1, 6)))
            for poison in [draw(st.integers(0, 15)) == 0]  # about one row in 16
        )
        out.append(
            Request(
                rows,
                arrival_gap_s=draw(st.sampled_from([0.0, 0.0, 0.0005, 0.002])),
                timeout_s=draw(st.sampled_from([LONG_TIMEOUT_S, LONG_TIMEOUT_S, 0.001, 0.01])),
                cancel_after_s=draw(st.none() | st.sampled_from([0.0, 0.001, 0.005])),
                door_s=draw(st.none() | st.sampled_from([0.0, 0.001, 0.003])),
            )
        )
    return out


limits_strategy = st.builds(
    BatchLimits,
    max_batch_size=st.integers(1, 8),
    max_batch_tokens=st.integers(30, 300),
    max_wait_s=st.sampled_from([0.0, 0.0, 0.002]),
    queue_limit=st.integers(6, 60),
    workers=st.integers(1, 2),
)


async def through_the_door(batcher: Batcher, request: Request) -> list[object]:
    """As the HTTP layer does: a place held from the door (if the request goes through it) until
    its rows are queued, and given back however the request ends."""
    rows = list(request.rows)
    admission = None
    if request.door_s is not None:
        admission = batcher.admit()
        if admission is None:
            raise Overloaded("refused at the door")
    try:
        if request.door_s:
            await asyncio.sleep(request.door_s)  # reading and parsing the body
        return await batcher.submit(
            rows, [row.length for row in rows], request.timeout_s, admission
        )
    finally:
        if admission is not None:
            admission.release()


async def drive(batcher: Batcher, traffic: list[Request]) -> list[object]:
    loop = asyncio.get_running_loop()
    tasks = []
    for request in traffic:
        await asyncio.sleep(request.arrival_gap_s)
        task = asyncio.ensure_future(through_the_door(batcher, request))
        if request.cancel_after_s is not None:
            loop.call_later(request.cancel_after_s, task.cancel)
        tasks.append(task)
    # Every request must settle by itself, well before the long timeout: none may hang.
    return await asyncio.wait_for(
        asyncio.gather(*tasks, return_exceptions=True), LONG_TIMEOUT_S - 2
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic=requests(), limits=limits_strategy)
def test_every_request_is_resolved_once_with_its_own_outcome(
    traffic: list[Request], limits: BatchLimits
) -> None:
    model = Model(limits)

    async def main() -> tuple[list[object], int, int]:
        batcher: Batcher = Batcher(model, limits)
        batcher.start()
        try:
            outcomes = await drive(batcher, traffic)
            return outcomes, batcher.depth, batcher.admitted
        finally:
            await batcher.stop()

    outcomes, depth_after, admitted_after = asyncio.run(main())

    assert depth_after == 0, "rows left in the queue after every request settled"
    assert admitted_after == 0, "queue places still held after every request settled"
    computed = [row for batch in model.batches for row in batch]
    poisoned_batches = [batch for batch in model.batches if any(r.poison for r in batch)]
    for batch in model.batches:
        assert len(batch) <= limits.max_batch_size
        assert len(batch) == 1 or max(r.length for r in batch) * len(batch) <= (
            limits.max_batch_tokens
        )
    # A row is computed once, or, when its batch failed, once more alone to find its own outcome.
    answered = [row for batch in model.batches if batch not in poisoned_batches for row in batch]
    assert len(answered) == len(set(answered)), "a row was answered twice"
    alone = {batch[0] for batch in model.batches if len(batch) == 1}
    for batch in poisoned_batches:
        assert len(batch) == 1 or set(batch) <= alone, "a failed batch's rows were not rerun alone"

    for request, outcome in zip(traffic, outcomes, strict=True):
        number = request.rows[0].request
        if isinstance(outcome, list):  # its own results, in its own order
            assert outcome == [(number, row.index) for row in request.rows]
        elif isinstance(outcome, Overloaded):  # refused whole, before anything was queued
            assert not [row for row in computed if row.request == number]
        elif isinstance(outcome, DeadlineExceeded):
            assert request.timeout_s < LONG_TIMEOUT_S
        elif isinstance(outcome, asyncio.CancelledError):
            assert request.cancel_after_s is not None
        elif isinstance(outcome, BatchFailed):  # only a request that holds a poison row fails
            assert any(row.poison for row in request.rows)
        else:
            raise AssertionError(f"request {number}: unexpected outcome {outcome!r}")


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 120), min_size=1, max_size=40), limits=limits_strategy)
def test_cancelled_rows_leave_the_queue_at_once_and_are_never_computed(
    lengths: list[int], limits: BatchLimits
) -> None:
    """A client that goes away frees its queue places immediately, even while workers are busy."""
    entered, release = threading.Event(), threading.Event()
    computed: list[int] = []

    def blocked_model(rows: list[int]) -> list[int]:
        entered.set()
        release.wait(5)
        computed.extend(rows)
        return rows

    async def main() -> None:
        batcher: Batcher = Batcher(blocked_model, BatchLimits(**{**vars(limits), "workers": 1}))
        batcher.start()
        try:
            blocker = asyncio.ensure_future(batcher.submit([-1], [1], LONG_TIMEOUT_S))
            while not entered.is_set():  # the worker holds the blocker; everything else queues
                await asyncio.sleep(0.001)
            fits = lengths[: limits.queue_limit]
            gone = [
                asyncio.ensure_future(batcher.submit([i], [n], LONG_TIMEOUT_S))
                for i, n in enumerate(fits)
            ]
            await asyncio.sleep(0.005)
            assert batcher.depth == len(fits)
            for task in gone:
                task.cancel()
            await asyncio.gather(*gone, return_exceptions=True)
            assert batcher.depth == 0  # at once, with the worker still busy
            release.set()
            assert await blocker == [-1]
        finally:
            release.set()
            await batcher.stop()

    asyncio.run(main())
    assert computed == [-1]
