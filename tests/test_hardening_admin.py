"""Admin operations under concurrency, through a live server: concurrent uploads lose nothing,
requests in flight survive the deletion or replacement of their version, and a tiny cache under
concurrent mixed traffic keeps every answer right."""

from __future__ import annotations

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.api.app import create_app
from app.backbone import Backbone
from app.settings import Settings
from tests.gated_engine import Gate
from tests.helpers import MakeClient, classify, prompt_bytes, random_spec, scrape, upload
from tests.live_server import live_server

UPLOADERS = 12


def serve(tmp_path: Path, backbone: Backbone, **overrides: object):  # type: ignore[no-untyped-def]
    settings = Settings(prompts_dir=tmp_path / "prompts", **overrides)  # type: ignore[arg-type]
    return live_server(create_app(settings, backbone=backbone))


def test_concurrent_uploads_to_one_task_get_distinct_consecutive_versions(
    tmp_path: Path, tiny_backbone: Backbone
) -> None:
    files = [prompt_bytes(random_spec(32, seed=seed)) for seed in range(UPLOADERS)]
    with serve(tmp_path, tiny_backbone) as base, httpx.Client(base_url=base, timeout=30) as http:

        def put(data: bytes) -> dict:
            r = http.put("/prompts/t", files={"file": ("p", data)})
            assert r.status_code == 201, r.text
            return r.json()

        with ThreadPoolExecutor(UPLOADERS) as pool:
            records = list(pool.map(put, files))
        versions = sorted(record["version"] for record in records)
        assert versions == list(range(1, UPLOADERS + 1)), "versions lost or duplicated"
        state = http.get("/prompts/t").json()
        assert {v["version"]: v["sha256"] for v in state["versions"]} == {
            record["version"]: record["sha256"] for record in records
        }
        assert state["active"] in versions
        for record in records:  # each stored file is the one its upload was answered for
            stored = tmp_path / "prompts" / "t" / f"v{record['version']}.safetensors"
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == record["sha256"]
        assert put(files[0])["version"] == UPLOADERS + 1


@pytest.mark.parametrize("change", ["replace-and-delete-version", "delete-task"])
def test_requests_in_flight_complete_when_their_version_is_replaced_or_deleted(
    tmp_path: Path, tiny_backbone: Backbone, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    gate = Gate.installed(monkeypatch)
    texts = ["a sentence to classify", "another one"]
    with (
        serve(tmp_path, tiny_backbone, model_workers=1, max_batch_size=1) as base,
        httpx.Client(base_url=base, timeout=30) as http,
        ThreadPoolExecutor(2) as pool,
    ):
        assert upload(http, "t", prompt_bytes(random_spec(32, seed=1))).status_code == 201  # type: ignore[arg-type]
        before = classify(http, "t", texts, return_all_scores=True).json()  # type: ignore[arg-type]
        gate.hold()
        computing = pool.submit(classify, http, "t", texts, return_all_scores=True)
        assert gate.entered.wait(10)  # its first row is in the model, its second queued
        if change == "delete-task":
            assert http.delete("/prompts/t").status_code == 204
            assert classify(http, "t", "x").status_code == 404  # type: ignore[arg-type]
        else:
            assert upload(http, "t", prompt_bytes(random_spec(32, seed=2))).status_code == 201  # type: ignore[arg-type]
            assert http.delete("/prompts/t/versions/1").status_code == 204
        gate.release()
        answer = computing.result(timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json() == before, "the pinned version answered, as if nothing happened"


def test_a_tiny_cache_under_concurrent_mixed_traffic_answers_every_task_right(
    tmp_path: Path, tiny_backbone: Backbone, make_client: MakeClient
) -> None:
    roomy = make_client()  # same prompts directory as the live server below
    tasks = [f"task-{i}" for i in range(10)]
    for i, task in enumerate(tasks):
        pooling = ("mean", "cls", "first")[i % 3]
        spec = random_spec(32, prompt_len=1 + i, seed=i, pooling=pooling)
        assert upload(roomy, task, prompt_bytes(spec)).status_code == 201
    texts = ["a short text", "and another, a bit longer than the first"]
    expected = {task: classify(roomy, task, texts, return_all_scores=True).json() for task in tasks}
    rng = random.Random(0)
    order = [rng.choice(tasks) for _ in range(200)]
    with serve(tmp_path, tiny_backbone, cache_bytes=1) as base, httpx.Client(base_url=base) as http:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda task: classify(http, task, texts, return_all_scores=True),  # type: ignore[arg-type]
                    order,
                )
            )
        metrics = scrape(http)  # type: ignore[arg-type]
    for task, answer in zip(order, answers, strict=True):
        assert answer.status_code == 200, answer.text
        got, want = answer.json(), expected[task]
        assert [p["label"] for p in got["predictions"]] == [p["label"] for p in want["predictions"]]
        for p, q in zip(got["predictions"], want["predictions"], strict=True):
            for label in q["scores"]:
                assert p["scores"][label] == pytest.approx(q["scores"][label], abs=1e-5)
    assert metrics[("promptserve_prompt_cache_evictions_total", ())] > 0
    assert metrics[("promptserve_resident_prompts", ())] <= 2  # about one task at a time
