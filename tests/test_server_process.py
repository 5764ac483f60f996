"""The real thing end to end: `python -m app.cli serve` in its own process, spoken to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import prompt_bytes, random_spec

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"server exited early with {server.returncode}"
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise AssertionError("server never became ready")


def serve_command(port: int, backbone: Path, prompts_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backbone",
        str(backbone),
        "--prompts-dir",
        str(prompts_dir),
        *extra,
    ]


def clean_env() -> dict[str, str]:
    """This machine's environment without PROMPTSERVE_* settings, so flags alone decide."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PROMPTSERVE_")}


def test_serve_upload_classify_and_stop_on_sigterm(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(
        serve_command(
            port,
            tiny_backbone_dir,
            tmp_path / "prompts",
            "--precision",
            "fp32",
            "--device",
            "cpu",
            "--admin-token",
            "s3cret",
        ),
        cwd=REPO,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(base, server)
        with httpx.Client(base_url=base, timeout=10.0) as http:
            spec = random_spec(32, num_labels=2)
            refused = http.put("/prompts/sentiment", files={"file": ("p", prompt_bytes(spec))})
            assert refused.status_code == 401
            r = http.put(
                "/prompts/sentiment",
                files={"file": ("p", prompt_bytes(spec))},
                data={"labels": '["neg", "pos"]'},
                headers={"Authorization": "Bearer s3cret"},
            )
            assert r.status_code == 201, r.text
            r = http.post("/classify", json={"task": "sentiment", "inputs": ["great", "awful"]})
            assert r.status_code == 200, r.text
            assert [p["label"] in ("neg", "pos") for p in r.json()["predictions"]] == [True, True]
            assert http.get("/info").json()["hidden_size"] == 32
            assert "promptserve_requests_total" in http.get("/metrics").text

        server.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down gracefully, so supervisors see it
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
        assert (tmp_path / "prompts" / "sentiment" / "v1.safetensors").is_file()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output, output
    assert "Application shutdown complete" in output, output


def test_a_server_that_cannot_load_its_backbone_exits_instead_of_hanging(tmp_path: Path) -> None:
    """A model folder that looks right (a config.json) but cannot load: found while starting."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')
    result = run_serve(serve_command(free_port(), broken, tmp_path / "p"))
    assert result.returncode != 0
    assert "cannot start" in result.stderr, result.stderr


def test_a_backbone_folder_that_does_not_exist_is_refused_before_starting(tmp_path: Path) -> None:
    """Ops audit 5: found only after the server had started, with a traceback."""
    result = run_serve(serve_command(free_port(), tmp_path / "no" / "such" / "model", tmp_path))
    assert result.returncode == 2
    assert "no such directory" in result.stderr and "Traceback" not in result.stderr


def run_serve(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=60
    )
