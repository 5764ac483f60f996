"""The real engine, with a gate in front of its forward: a test can hold the model workers busy
and count every row they computed. Patch before the app is built (the batcher binds forward)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
import torch

from app.engine import Engine, Row


class Gate:
    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()  # a forward is waiting at the closed gate
        self.rows: list[Row] = []
        self._lock = threading.Lock()

    def hold(self) -> None:
        self.entered.clear()
        self.open.clear()

    def release(self) -> None:
        self.open.set()

    @classmethod
    def installed(cls, monkeypatch: pytest.MonkeyPatch) -> Gate:
        """A gate in front of Engine.forward for the rest of the test (open to begin with)."""
        gate = cls()
        real_forward = Engine.forward

        def forward(engine: Engine, rows: Sequence[Row]) -> list[torch.Tensor]:
            if not gate.open.is_set():
                gate.entered.set()
                assert gate.open.wait(30), "the test never released the gate"
            with gate._lock:
                gate.rows.extend(row for row in rows if row.task.task != "warmup")
            return real_forward(engine, rows)

        monkeypatch.setattr(Engine, "forward", forward)
        return gate
