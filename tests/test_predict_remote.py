"""`promptserve eval --url`: scoring through a running server fits its limits without flags."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.api.app import create_app
from app.backbone import Backbone
from app.cli import main
from app.errors import RemoteError
from app.settings import Settings
from app.training.evaluate import predict_remote
from tests.gated_engine import Gate
from tests.helpers import prompt_bytes, random_spec, upload
from tests.live_server import live_server

Start = Callable[..., tuple[str, FastAPI, httpx.Client]]
TEXTS = [f"text number {i} for the remote eval" for i in range(40)]


def post(http: httpx.Client, inputs: str | list[str]) -> httpx.Response:
    return http.post("/classify", json={"task": "t", "inputs": inputs})


def served_labels(http: httpx.Client, texts: list[str], per_request: int) -> list[str]:
    labels: list[str] = []
    for start in range(0, len(texts), per_request):
        response = post(http, texts[start : start + per_request])
        assert response.status_code == 200, response.text
        labels += [p["label"] for p in response.json()["predictions"]]
    return labels


@pytest.fixture
def server(tmp_path: Path, tiny_backbone: Backbone) -> Iterator[Start]:
    """Start a live server with the given settings and task 't'; yields (base URL, app, client)."""
    with contextlib.ExitStack() as stack:

        def start(**overrides: object) -> tuple[str, FastAPI, httpx.Client]:
            settings = Settings(prompts_dir=tmp_path / "prompts", **overrides)  # type: ignore[arg-type]
            app = create_app(settings, backbone=tiny_backbone)
            base = stack.enter_context(live_server(app))
            http = stack.enter_context(httpx.Client(base_url=base, timeout=30))
            assert upload(http, "t", prompt_bytes(random_spec(32))).status_code == 201  # type: ignore[arg-type]
            return base, app, http

        yield start


def test_eval_url_fits_a_server_that_takes_16_texts_per_request(
    server: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batches of 64 were refused with 413 by a server with max_client_batch 16, and eval
    failed; it must halve its batch until the server takes it (audit finding)."""
    base, _, http = server(max_client_batch=16, queue_limit=16)
    expected = served_labels(http, TEXTS, 16)
    assert predict_remote(base, "t", TEXTS) == (expected, 1)

    # 30 rows labelled as served, 10 labelled otherwise: accuracy 0.75 through the CLI.
    wrong = {"label0": "label1", "label1": "label2", "label2": "label0"}
    truth = expected[:30] + [wrong[label] for label in expected[30:]]
    data_file = tmp_path / "eval.jsonl"
    data_file.write_text(
        "".join(
            json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(TEXTS, truth, strict=True)
        )
    )
    capsys.readouterr()
    assert main(["eval", "--task", "t", "--data", str(data_file), "--url", base, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 40 and report["accuracy"] == 0.75


def test_eval_url_reports_a_text_too_large_even_alone(server: Start) -> None:
    base, _, _ = server(max_request_bytes=2000)
    with pytest.raises(RemoteError, match="413.*even with one text per request"):
        predict_remote(base, "t", ["short", "x" * 5000, "short"])


def test_eval_url_waits_out_an_overloaded_server(
    server: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 503 (queue full) ended the eval at once; it must wait the Retry-After and try again,
    a bounded number of times (audit finding)."""
    gate = Gate.installed(monkeypatch)
    base, app, http = server(model_workers=1, max_batch_size=1, queue_limit=4, max_client_batch=4)
    texts = TEXTS[:6]
    batcher = app.state.services.batcher
    gate.hold()
    with ThreadPoolExecutor(3) as pool:
        running = pool.submit(post, http, "in the model")
        assert gate.entered.wait(10)
        queued = pool.submit(post, http, ["queued"] * 4)
        deadline = time.monotonic() + 10
        while batcher.depth < 4:
            assert time.monotonic() < deadline and not queued.done(), "the queue never filled"
            time.sleep(0.01)

        with pytest.raises(RemoteError, match="503.*still overloaded after 1 tries"):
            predict_remote(base, "t", texts, overload_tries=1)

        scoring = pool.submit(predict_remote, base, "t", texts)
        time.sleep(0.3)  # inside the server's Retry-After of 1 s: eval is waiting, not failed
        assert not scoring.done()
        gate.release()
        assert running.result(timeout=30).status_code == 200
        assert queued.result(timeout=30).status_code == 200
        predicted, version = scoring.result(timeout=30)
    assert (predicted, version) == (served_labels(http, texts, 4), 1)
