"""The server under test for the reliability scripts: a real `promptserve serve` process on
loopback, its resident memory, its metrics, and tasks uploaded to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch
from prometheus_client.parser import text_string_to_metric_families
from safetensors.torch import save

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running_server(workdir: Path, *flags: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`promptserve serve` with its default backbone and `flags`, until the block ends."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTSERVE_")}
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    command += ["--prompts-dir", str(workdir / "prompts"), "--log-level", "warning", *flags]
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(60)
        log.close()


def _wait_ready(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server never became ready")


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` (0: this process)."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """Samples a process's resident memory every `every_s` on a thread: (seconds, MiB) pairs."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.samples: list[tuple[float, float]] = []
        self._pid, self._every_s = pid, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self._every_s):
            self.samples.append((time.monotonic() - start, rss_mib(self._pid)))


def metric_sum(base: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples (those with the given labels) as the server reports them."""
    total = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def prompt_file(hidden: int, seed: int, prompt_len: int = 16, labels: int = 2) -> bytes:
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "prompt": torch.randn(prompt_len, hidden, generator=g) * 0.5,
        "head.weight": torch.randn(labels, hidden, generator=g),
        "head.bias": torch.zeros(labels),
    }
    names = json.dumps([f"label{i}" for i in range(labels)])
    return save(tensors, metadata={"labels": names})


def upload(base: str, task: str, seed: int, prompt_len: int = 16) -> dict:
    hidden = httpx.get(f"{base}/info").json()["hidden_size"]
    data = prompt_file(hidden, seed, prompt_len)
    r = httpx.put(f"{base}/prompts/{task}", files={"file": ("p", data)}, timeout=60)
    r.raise_for_status()
    return r.json()


SENTENCES = [
    "the film was a delight from start to finish",
    "dull, slow and far too long for what it had to say",
    "an honest, moving portrait of a family in trouble",
    "i want my two hours back",
    "the cast is wonderful but the script lets them down badly",
    "a small miracle of a movie, funny and sad at once",
    "nothing here you have not seen done better elsewhere",
    "sharp writing, lovely photography and a great score",
]
