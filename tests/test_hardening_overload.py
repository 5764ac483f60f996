"""A full queue refuses /classify at the door: 503 with Retry-After before the body is parsed,
so refusing stays cheap under any load; the rest of the API keeps answering."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.api.app import create_app
from app.backbone import Backbone
from app.settings import Settings
from tests.gated_engine import Gate
from tests.helpers import assert_error, classify, prompt_bytes, random_spec, upload
from tests.live_server import live_server

LIMIT = 4


def test_a_full_queue_refuses_at_the_door_and_recovers(
    tmp_path: Path, tiny_backbone: Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate.installed(monkeypatch)
    settings = Settings(
        prompts_dir=tmp_path / "prompts",
        model_workers=1,
        max_batch_size=1,
        queue_limit=LIMIT,
        max_client_batch=LIMIT,
    )  # type: ignore[call-arg]
    with (
        live_server(create_app(settings, backbone=tiny_backbone)) as base,
        httpx.Client(base_url=base, timeout=30) as http,
        ThreadPoolExecutor(2) as pool,
    ):
        assert upload(http, "t", prompt_bytes(random_spec(32))).status_code == 201  # type: ignore[arg-type]
        gate.hold()
        running = pool.submit(classify, http, "t", "in the model")
        assert gate.entered.wait(10)
        queued = pool.submit(classify, http, "t", ["queued"] * LIMIT)  # fills the queue
        deadline = time.monotonic() + 10
        while "promptserve_queue_depth 4.0" not in http.get("/metrics").text:
            assert time.monotonic() < deadline and not queued.done(), "the queue never filled"
            time.sleep(0.01)
        garbage = http.post("/classify", content=b"{not json", headers={"content-type": "x"})
        assert_error(garbage, 503, "Overloaded", "queue full")  # refused before any parsing
        assert garbage.headers["retry-after"] == "1"
        assert http.get("/prompts").status_code == 200  # everything else still answers
        gate.release()
        assert running.result(timeout=30).status_code == 200
        assert queued.result(timeout=30).status_code == 200
        assert classify(http, "t", "room again").status_code == 200  # type: ignore[arg-type]


def test_every_classify_request_gives_back_its_place_whatever_its_outcome(make_client) -> None:  # type: ignore[no-untyped-def]
    """The door holds a queue place for each /classify request until its rows are queued; a
    request that never queues (bad JSON, unknown task, too many inputs, wrong version) must
    give its place back too, or the server would end up refusing everything."""
    client = make_client(queue_limit=3, max_client_batch=2)
    assert upload(client, "t", prompt_bytes(random_spec(32))).status_code == 201  # type: ignore[arg-type]
    outcomes = [
        classify(client, "t", "fine").status_code,  # type: ignore[arg-type]
        client.post("/classify", content=b"{not json").status_code,
        classify(client, "nope", "no such task").status_code,  # type: ignore[arg-type]
        classify(client, "t", ["a", "b", "c"]).status_code,  # type: ignore[arg-type]
        client.post("/classify", json={"task": "t", "inputs": "x", "version": 9}).status_code,
    ]
    assert outcomes == [200, 422, 404, 413, 404]
    batcher = client.app.state.services.batcher
    assert batcher.admitted == 0 and batcher.depth == 0
    for _ in range(10):  # more requests than the queue has places: none was lost
        assert classify(client, "t", "again").status_code == 200  # type: ignore[arg-type]
