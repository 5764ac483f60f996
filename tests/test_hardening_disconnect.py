"""A client that disconnects while its request waits has its queued rows dropped, not computed."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.api.app import create_app
from app.backbone import Backbone
from app.settings import Settings
from tests.gated_engine import Gate
from tests.helpers import classify, prompt_bytes, random_spec, scrape, upload
from tests.live_server import live_server

ABANDONED = 5
TEXTS_EACH = 3


def send_and_leave_open(base: str, body: bytes) -> socket.socket:
    """A whole /classify request on a raw socket; closing the socket is the client leaving."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port))
    head = (
        "POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def queue_depth(http: httpx.Client) -> float:
    return scrape(http)[("promptserve_queue_depth", ())]  # type: ignore[arg-type]


def disconnected_count(http: httpx.Client) -> float:
    key = ("promptserve_requests_total", (("route", "/classify"), ("status", "499")))
    return scrape(http).get(key, 0.0)  # type: ignore[arg-type]


def test_a_disconnected_clients_queued_rows_are_dropped_not_computed(
    tmp_path: Path, tiny_backbone: Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate.installed(monkeypatch)
    settings = Settings(prompts_dir=tmp_path / "prompts", model_workers=1, max_batch_size=4)  # type: ignore[call-arg]
    with (
        live_server(create_app(settings, backbone=tiny_backbone)) as base,
        httpx.Client(base_url=base, timeout=30) as http,
        ThreadPoolExecutor(1) as pool,
    ):
        assert upload(http, "t", prompt_bytes(random_spec(32))).status_code == 201  # type: ignore[arg-type]
        gate.hold()
        kept = pool.submit(classify, http, "t", "this one stays")  # the worker blocks on it
        assert gate.entered.wait(10)
        body = json.dumps({"task": "t", "inputs": ["gone"] * TEXTS_EACH}).encode()
        leaving = [send_and_leave_open(base, body) for _ in range(ABANDONED)]
        wait_for(lambda: queue_depth(http) == ABANDONED * TEXTS_EACH, "the rows to queue")
        for sock in leaving:
            sock.close()
        # Dropped at once, while the worker is still busy: they hold no queue place either.
        wait_for(lambda: queue_depth(http) == 0, "the abandoned rows to leave the queue")
        wait_for(lambda: disconnected_count(http) == ABANDONED, "the 499s to be counted")
        gate.release()
        assert kept.result(timeout=30).status_code == 200
        assert classify(http, "t", "after").status_code == 200  # type: ignore[arg-type]
    computed = [row.task.task for row in gate.rows]
    assert computed == ["t", "t"], "only the two requests that stayed were computed"
