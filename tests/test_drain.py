"""Graceful drain of the real server process: on SIGTERM /readyz turns 503 at once, new work is
refused with 503, the requests in flight are answered, then the process exits 0."""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.api.app import create_app
from app.backbone import Backbone
from app.serve import DrainingServer
from app.settings import Settings
from tests.gated_engine import Gate
from tests.helpers import assert_error, prompt_bytes, random_spec
from tests.live_server import live_config, serving
from tests.test_server_process import REPO, clean_env, free_port, serve_command, wait_ready

TOKEN = "drain-test-admin-token"
CLIENTS = 8
TEXTS = ["a rather long sentence about nothing in particular " * 12] * 64  # ~128 tokens each


class Server:
    def __init__(self, backbone: Path, tmp_path: Path, *flags: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "server.log"
        command = serve_command(self.port, backbone, tmp_path / "prompts", *flags)
        command += ["--device", "cpu", "--precision", "fp32", "--model-workers", "1"]
        env = {**clean_env(), "PROMPTSERVE_ADMIN_TOKEN": TOKEN}
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_ready(self.base, self.process)
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_with_queued_work(server: Server, pool: ThreadPoolExecutor) -> list[Future]:
    """Upload a task, then keep CLIENTS requests of 64 rows each in flight (their futures)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    data = prompt_bytes(random_spec(32, num_labels=2))
    r = httpx.put(f"{server.base}/prompts/t", files={"file": ("p", data)}, headers=headers)
    assert r.status_code == 201, r.text

    def one() -> httpx.Response:
        body = {"task": "t", "inputs": TEXTS}
        return httpx.post(f"{server.base}/classify", json=body, timeout=60)

    waiting = [pool.submit(one) for _ in range(CLIENTS)]
    deadline = time.monotonic() + 20
    # Every request queued (rows waiting or computed cover all but part of one request), so that
    # none of them is still arriving when the test sends SIGTERM: that one would rightly be
    # refused as new work.
    while metric(server.base, "promptserve_queue_depth") + metric(
        server.base, "promptserve_batch_rows_sum"
    ) <= 64 * (CLIENTS - 1):
        assert time.monotonic() < deadline, "the requests never queued up"
        time.sleep(0.005)
    return waiting


def metric(base: str, name: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} metric")


def queue_depth(base: str) -> float:
    return metric(base, "promptserve_queue_depth")


@pytest.mark.slow
def test_sigterm_drains_requests_in_flight_then_exits_0(
    tiny_backbone_dir: Path, tmp_path: Path
) -> None:
    server = Server(
        tiny_backbone_dir, tmp_path, "--max-batch-size", "1", "--drain-grace-s", "60",
        "--log-level", "debug", "--queue-limit", str(64 * CLIENTS),
    )  # fmt: skip
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            in_flight = start_with_queued_work(server, pool)
            server.process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            while httpx.get(f"{server.base}/readyz").status_code == 200:  # at once, not after
                assert time.monotonic() - started < 0.5, "/readyz still 200 after SIGTERM"
            assert_error(httpx.get(f"{server.base}/readyz"), 503, "ShuttingDown")
            refused = httpx.post(f"{server.base}/classify", json={"task": "t", "inputs": "new"})
            assert_error(refused, 503, "ShuttingDown", "shutting down")
            assert refused.headers["retry-after"] == "1"
            assert httpx.get(f"{server.base}/healthz").status_code == 200
            assert queue_depth(server.base) > 0, "the work must still be queued as drain begins"
            answers = [future.result(timeout=60) for future in in_flight]
        assert [r.status_code for r in answers] == [200] * CLIENTS
        assert all(len(r.json()["predictions"]) == len(TEXTS) for r in answers)
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
    log = server.log()
    assert "drained" in log and "Traceback" not in log, log
    assert TOKEN not in log, "the admin token must never be logged"


def test_past_the_grace_period_waiting_requests_get_503_not_a_dropped_connection(
    tmp_path: Path, tiny_backbone: Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process (the signal handler called directly): the model is held, so nothing finishes."""
    gate = Gate.installed(monkeypatch)
    settings = Settings(prompts_dir=tmp_path / "prompts", drain_grace_s=0.3, model_workers=1)  # type: ignore[call-arg]
    app = create_app(settings, backbone=tiny_backbone)
    server = DrainingServer(live_config(app), app)
    with serving(server) as base, ThreadPoolExecutor(3) as pool:
        r = httpx.put(f"{base}/prompts/t", files={"file": ("p", prompt_bytes(random_spec(32)))})
        assert r.status_code == 201, r.text
        gate.hold()
        body = {"task": "t", "inputs": ["x", "y"]}
        waiting = [pool.submit(httpx.post, f"{base}/classify", json=body) for _ in range(3)]
        assert gate.entered.wait(10)
        server.handle_exit(signal.SIGTERM, None)
        answers = [future.result(timeout=10) for future in waiting]
        for answer in answers:  # answered while the forward is still stuck: nobody waits on it
            assert_error(answer, 503, "ShuttingDown")
        gate.release()  # shutdown waits for the forward in progress (milliseconds in real life)
        deadline = time.monotonic() + 10
        while not stopped(base):
            assert time.monotonic() < deadline, "the server did not stop after the grace period"
            time.sleep(0.05)


def stopped(base: str) -> bool:
    try:
        httpx.get(f"{base}/healthz", timeout=1)
    except httpx.TransportError:
        return True
    return False
