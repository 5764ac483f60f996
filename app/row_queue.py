"""The rows waiting for a model worker: one list, shared by the event loop and the worker threads.

Every read and change happens under the queue's lock, `RowQueue.changed` (a Condition, which also
wakes the workers). A row's future is touched on the event loop only; the worker threads read the
row's `gone` flag instead.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.batch_types import BatchLimits
from app.grouping import group

P = TypeVar("P")


@dataclass(eq=False)
class QueuedRow(Generic[P]):
    payload: P
    length: int
    deadline: float  # time.monotonic()
    enqueued: float
    future: asyncio.Future = field(repr=False)
    gone: bool = False  # its caller left: never compute it


class RowQueue(Generic[P]):
    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self.changed = threading.Condition()  # rows arrived, or whatever else workers wait for
        self._rows: list[QueuedRow[P]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def put(self, rows: list[QueuedRow[P]]) -> None:
        with self.changed:
            self._rows.extend(rows)
            self.changed.notify_all()

    def withdraw(self, rows: list[QueuedRow[P]]) -> int:
        """Mark rows whose caller left; those still waiting leave now. Returns how many did."""
        with self.changed:
            for row in rows:
                row.gone = True
            before = len(self._rows)
            self._rows = [row for row in self._rows if not row.gone]
            return before - len(self._rows)

    # --- with the lock held ----------------------------------------------------------------

    def drain(self) -> list[QueuedRow[P]]:
        rows, self._rows = self._rows, []
        return rows

    def oldest_enqueued(self) -> float:
        return self._rows[0].enqueued

    def take(self, now: float) -> tuple[list[QueuedRow[P]], list[QueuedRow[P]]]:
        """Drop dead rows, then take the oldest row and those closest to it in length
        (app/grouping.py). Returns (batch, rows whose deadline passed while queued)."""
        live: list[QueuedRow[P]] = []
        expired: list[QueuedRow[P]] = []
        for row in self._rows:
            if not row.gone:
                (live if row.deadline > now else expired).append(row)
        if not live:
            self._rows = []
            return [], expired
        limits = self.limits
        picked = group(
            [row.length for row in live],
            limits.max_batch_size,
            limits.max_batch_tokens,
            limits.max_padding,
        )
        chosen = set(picked)
        self._rows = [row for i, row in enumerate(live) if i not in chosen]
        return [live[i] for i in picked], expired
