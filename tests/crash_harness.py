"""Crash rounds: SIGKILL the real server at a random moment while uploads, activations and deletes
run, restart it, and check the registry against every acknowledged operation.

Each task is driven by one client thread, one operation at a time, so at most one operation per
task is in flight when the server dies: its outcome may be either way, never anything else.
Used by tests/test_crash_safety.py (a few rounds) and bench/reliability/crash_rounds.py (many).
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch
from safetensors.torch import load_file

from tests.helpers import prompt_bytes, random_spec
from tests.test_server_process import REPO, clean_env, free_port, serve_command, wait_ready

HIDDEN = 32
TASKS = 4


@dataclass
class TaskModel:
    """What the acknowledged operations say a task must look like."""

    versions: dict[int, tuple[str, int]] = field(default_factory=dict)  # version -> (sha, seed)
    active: int | None = None


@dataclass
class Op:
    kind: str  # upload | activate | delete_version | delete_task
    task: str
    version: int | None = None
    seed: int | None = None


@dataclass
class RoundReport:
    acknowledged: int = 0
    in_flight_at_kill: int = 0
    killed_after_s: float = 0.0


class Expected:
    """The model of every task, and the checks of a restarted server against it."""

    def __init__(self, prompts_dir: Path) -> None:
        self.prompts_dir = prompts_dir
        self.tasks: dict[str, TaskModel] = {f"task-{i}": TaskModel() for i in range(TASKS)}
        self.in_flight: dict[str, Op] = {}  # unacknowledged when the server died
        self.next_seed = 1

    def check_restarted(self, http: httpx.Client) -> None:
        """Compare the restarted server with the model; adopt the outcome of in-flight ops."""
        leftovers = list(self.prompts_dir.rglob(".*"))
        assert not leftovers, f"leftovers of interrupted writes after restart: {leftovers}"
        for task, model in self.tasks.items():
            self._check_task(http, task, model, self.in_flight.get(task))
        self.in_flight = {}

    def _check_task(self, http: httpx.Client, task: str, model: TaskModel, op: Op | None) -> None:
        r = http.get(f"/prompts/{task}")
        if r.status_code == 404:
            assert not model.versions or (op and op.kind == "delete_task"), (
                f"{task}: acknowledged versions {sorted(model.versions)} lost"
            )
            model.versions, model.active = {}, None
            return
        assert r.status_code == 200, r.text
        state = r.json()
        seen = {v["version"]: v["sha256"] for v in state["versions"]}
        extra = set(seen) - set(model.versions)
        missing = set(model.versions) - set(seen)
        if extra:  # only the upload in flight may have landed, whole and as sent
            assert op is not None and op.kind == "upload" and len(extra) == 1, (task, extra)
            (version,) = extra
            assert op.seed is not None
            self._check_file(task, version, seen[version], op.seed)
            model.versions[version] = (seen[version], op.seed)
            model.active = version
        if missing:  # only the delete in flight may have happened
            assert op is not None and op.kind == "delete_version" and missing == {op.version}, (
                f"{task}: acknowledged versions {sorted(missing)} lost"
            )
            del model.versions[op.version]
        for version, (sha, seed) in model.versions.items():
            assert seen[version] == sha, f"{task} v{version}: sha changed"
            self._check_file(task, version, sha, seed)
        allowed = {model.active} | ({op.version} if op and op.kind == "activate" else set())
        assert state["active"] in allowed, (task, state["active"], allowed)
        model.active = state["active"]
        r = http.post("/classify", json={"task": task, "inputs": ["still served"]})
        assert r.status_code == 200, r.text

    def _check_file(self, task: str, version: int, sha: str, seed: int) -> None:
        path = self.prompts_dir / task / f"v{version}.safetensors"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{path}: content changed"
        stored = load_file(path)
        assert torch.equal(stored["prompt"], spec_of(seed).prompt), f"{path}: not what was sent"

    # ---- the operations a client thread runs ----------------------------------------------
    def choose(self, rng: random.Random, task: str) -> Op:
        model = self.tasks[task]
        others = [v for v in model.versions if v != model.active]
        roll = rng.random()
        if not model.versions or roll < 0.45:
            seed, self.next_seed = self.next_seed, self.next_seed + 1
            return Op("upload", task, seed=seed)
        if roll < 0.7:
            return Op("activate", task, version=rng.choice(sorted(model.versions)))
        if others and roll < 0.95:
            return Op("delete_version", task, version=rng.choice(sorted(others)))
        return Op("delete_task", task)

    def apply(self, http: httpx.Client, op: Op) -> None:
        """Run `op`; when this returns, the server acknowledged it and the model records it."""
        model = self.tasks[op.task]
        if op.kind == "upload":
            assert op.seed is not None
            data = prompt_bytes(spec_of(op.seed))
            r = http.put(f"/prompts/{op.task}", files={"file": ("p", data)})
            assert r.status_code == 201, r.text
            record = r.json()
            model.versions[record["version"]] = (record["sha256"], op.seed)
            model.active = record["version"]
        elif op.kind == "activate":
            r = http.post(f"/prompts/{op.task}/activate", json={"version": op.version})
            assert r.status_code == 200, r.text
            model.active = op.version
        elif op.kind == "delete_version":
            r = http.delete(f"/prompts/{op.task}/versions/{op.version}")
            assert r.status_code == 204, r.text
            del model.versions[op.version]  # type: ignore[arg-type]
        else:
            assert http.delete(f"/prompts/{op.task}").status_code == 204
            model.versions, model.active = {}, None


def spec_of(seed: int):  # type: ignore[no-untyped-def]
    return random_spec(HIDDEN, prompt_len=1 + seed % 8, num_labels=2 + seed % 3, seed=seed)


class Server:
    def __init__(self, backbone_dir: Path, prompts_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        flags = ["--device", "cpu", "--precision", "fp32", "--trace", "off", "--model-workers", "1"]
        with log.open("a") as out:
            self.process = subprocess.Popen(
                serve_command(self.port, backbone_dir, prompts_dir, *flags),
                cwd=REPO,
                env=clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(self.base, self.process)
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def run_round(expected: Expected, backbone_dir: Path, log: Path, rng: random.Random) -> RoundReport:
    """Start the server, check it against the model, then write until a random SIGKILL."""
    server = Server(backbone_dir, expected.prompts_dir, log)
    report = RoundReport()
    in_flight: dict[str, Op] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def drive(http: httpx.Client, task: str, seed: int) -> None:
        task_rng = random.Random(seed)
        try:
            while server.process.poll() is None:
                with lock:
                    op = in_flight[task] = expected.choose(task_rng, task)
                expected.apply(http, op)  # raises TransportError once the server is gone
                with lock:
                    del in_flight[task]
                    report.acknowledged += 1
        except httpx.TransportError:
            pass  # the server died with this op in flight: it stays in `in_flight`
        except BaseException as exc:  # a wrong answer: the test must see it
            errors.append(exc)

    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            expected.check_restarted(http)
            threads = [
                threading.Thread(target=drive, args=(http, task, rng.randrange(2**32)))
                for task in expected.tasks
            ]
            for thread in threads:
                thread.start()
            report.killed_after_s = rng.uniform(0.02, 0.8)
            time.sleep(report.killed_after_s)
            server.kill()
            for thread in threads:
                thread.join(30)
    finally:
        server.kill()
    if errors:
        raise errors[0]
    report.in_flight_at_kill = len(in_flight)
    expected.in_flight = in_flight
    return report


def check_last_crash(expected: Expected, backbone_dir: Path, log: Path) -> None:
    """One more start, only to check the last round's crash."""
    server = Server(backbone_dir, expected.prompts_dir, log)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            expected.check_restarted(http)
    finally:
        server.kill()
