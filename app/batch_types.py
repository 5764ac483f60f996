"""The batcher's vocabulary: the limits it is given, what it reports, the places it holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 32
    max_batch_tokens: int = 4096
    max_padding: float = 1.0  # share of a batch's positions; 1.0 = no limit (app/grouping.py)
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
