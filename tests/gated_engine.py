"""The real engine, with a gate in front of its forward: a test can hold the model workers busy
and count every row they computed. Patch before the app is built (the batcher binds forward)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient

from app.engine import Engine, Row
from tests.helpers import classify


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
            if all(row.task.task == "upload-check" for row in rows):  # an upload's probe, not
                return real_forward(engine, rows)  # the model workers': never held nor counted
            if not gate.open.is_set():
                gate.entered.set()
                assert gate.open.wait(30), "the test never released the gate"
            with gate._lock:
                gate.rows.extend(row for row in rows if row.task.task != "warmup")
            return real_forward(engine, rows)

        monkeypatch.setattr(Engine, "forward", forward)
        return gate


@contextlib.contextmanager
def full_queue(client: TestClient, gate: Gate, task: str) -> Iterator[None]:
    """Inside: one request held in the model and one of `max_client_batch` rows waiting, which
    fills the queue when `queue_limit` is `max_client_batch` (build the app so). On exit the
    model is let go and both held requests must be answered."""
    settings = client.app.state.settings  # type: ignore[attr-defined]
    batcher = client.app.state.services.batcher  # type: ignore[attr-defined]
    gate.hold()
    with ThreadPoolExecutor(2) as pool:
        try:
            running = pool.submit(classify, client, task, "in the model")
            assert gate.entered.wait(10)
            waiting = pool.submit(classify, client, task, ["waiting"] * settings.max_client_batch)
            deadline = time.monotonic() + 10
            while batcher.depth < settings.queue_limit:
                assert time.monotonic() < deadline and not waiting.done(), "queue never filled"
                time.sleep(0.01)
            yield
        finally:
            gate.release()  # also when the queue never filled: nothing waits out the gate
        assert running.result(timeout=30).status_code == 200
        assert waiting.result(timeout=30).status_code == 200
