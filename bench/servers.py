"""Server subprocesses for the benchmark: start, wait for /readyz, read CPU time and metrics."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from cputime import process_cpu_seconds, thread_cpu_seconds
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# fmt: off
def promptserve_command(
    port: int, prompts_dir: Path, precision: str, backbone: str, device: str, extra: list[str]
) -> list[str]:
    return [
        sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--prompts-dir", str(prompts_dir), "--precision", precision, "--backbone", backbone,
        "--device", device, *extra,
    ]


def textbook_command(
    port: int, tasks_dir: Path, precision: str, backbone: str, device: str
) -> list[str]:
    return [
        sys.executable, str(Path(__file__).with_name("textbook_server.py")), "--port", str(port),
        "--tasks-dir", str(tasks_dir), "--precision", precision, "--backbone", backbone,
        "--device", device,
    ]
# fmt: on


class ServerProcess:
    """A server run as a child process in the repo root, its output kept in `log_path`."""

    def __init__(self, command: list[str], port: int, log_path: Path) -> None:
        self.command = command
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}  # GET /info, where the caller fetched it

    def __enter__(self) -> "ServerProcess":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_ready(self, timeout_s: float) -> None:
        """Poll GET /readyz until 200; raise with the log's tail if the server dies or times out."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time of the server process (all its threads, not its children) so far."""
        assert self.process is not None
        return process_cpu_seconds(self.process.pid)

    def thread_cpu_seconds(self) -> dict[str, float]:
        """CPU time of each of the server's threads so far."""
        assert self.process is not None
        return thread_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def upload_tasks(base_url: str, task_files: dict[str, Path]) -> None:
    """PUT every task file to a promptserve server; each must answer 201."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for name, path in task_files.items():
            files = {"file": (path.name, path.read_bytes(), "application/octet-stream")}
            response = client.put(f"/prompts/{name}", files=files)
            if response.status_code != 201:
                raise RuntimeError(f"PUT /prompts/{name}: {response.status_code} {response.text}")


# promptserve's histograms whose _sum and _count the benchmark reads before and after a load
SCRAPED = ("promptserve_forward_seconds", "promptserve_batch_rows")


def scrape(base_url: str) -> dict[str, float]:
    """`<histogram>_sum` and `<histogram>_count` of the SCRAPED histograms, from GET /metrics."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name in SCRAPED
        for sample in family.samples
        if sample.name.endswith(("_sum", "_count"))
    }
