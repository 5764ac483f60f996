"""Soak: mixed classification traffic with periodic uploads, activations and deletes for N
minutes, recording the server's resident memory and latency over time.

    python bench/reliability/soak.py --minutes 10

Traffic (open loop) spreads over `--tasks` tasks, 1 to 4 texts a request; meanwhile an admin
thread uploads new versions of those tasks, activates older ones, deletes old versions, and
creates and deletes tasks of its own. Prints one line per window; any classify answer other than
200, or any admin answer other than the expected one, is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadclient import Client, Outcome, RequestMaker, open_loop, percentile, run  # noqa: E402
from server import SENTENCES, metric_sum, rss_mib, running_server, upload  # noqa: E402

KEEP_VERSIONS = 4


class Admin(threading.Thread):
    """Every `every_s`: a new version, an activation, a version or churn-task deletion."""

    def __init__(self, base: str, tasks: list[str], every_s: float) -> None:
        super().__init__(daemon=True)
        self.base, self.tasks, self.every_s = base, tasks, every_s
        self.stop = threading.Event()
        self.done: dict[str, int] = {}
        self.errors: list[str] = []
        self.rng = random.Random(1)
        self.seed = 1000

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as http:
            while not self.stop.wait(self.every_s):
                action = self.rng.choice(["upload", "activate", "prune", "churn"])
                try:
                    getattr(self, action)(http)
                    self.done[action] = self.done.get(action, 0) + 1
                except AssertionError as exc:
                    self.errors.append(f"{action}: {exc}")

    def upload(self, http: httpx.Client) -> None:
        self.seed += 1
        upload(self.base, self.rng.choice(self.tasks), self.seed, self.rng.choice([4, 16, 32]))

    def activate(self, http: httpx.Client) -> None:
        task = self.rng.choice(self.tasks)
        versions = [v["version"] for v in http.get(f"/prompts/{task}").json()["versions"]]
        r = http.post(f"/prompts/{task}/activate", json={"version": self.rng.choice(versions)})
        assert r.status_code == 200, r.text

    def prune(self, http: httpx.Client) -> None:
        """Delete the oldest versions past KEEP_VERSIONS (never the active one)."""
        task = self.rng.choice(self.tasks)
        state = http.get(f"/prompts/{task}").json()
        old = [v["version"] for v in state["versions"] if v["version"] != state["active"]]
        for version in sorted(old)[: max(0, len(state["versions"]) - KEEP_VERSIONS)]:
            r = http.delete(f"/prompts/{task}/versions/{version}")
            assert r.status_code == 204, r.text

    def churn(self, http: httpx.Client) -> None:
        """Create a task, classify with it once, delete it: registry and cache must forget it."""
        self.seed += 1
        task = f"churn-{self.seed}"
        upload(self.base, task, self.seed)
        r = http.post("/classify", json={"task": task, "inputs": ["once"]})
        assert r.status_code == 200, r.text
        assert http.delete(f"/prompts/{task}").status_code == 204


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="classify requests per second")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--admin-every-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None, help="write the windows as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, running_server(Path(work)) as (process, base):
        tasks = [f"task-{i:02d}" for i in range(args.tasks)]
        for i, task in enumerate(tasks):
            upload(base, task, seed=i, prompt_len=(4, 16, 32)[i % 3])
        admin = Admin(base, tasks, args.admin_every_s)
        admin.start()
        windows = soak(process.pid, base, tasks, args)
        admin.stop.set()
        admin.join()
        alive = process.poll() is None
        evictions = metric_sum(base, "promptserve_prompt_cache_evictions_total")
    report = {
        "windows": windows,
        "admin_done": admin.done,
        "admin_errors": admin.errors,
        "classify_errors": sum(w["errors"] for w in windows),
        "server_alive_after": alive,
        "cache_evictions": evictions,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "windows"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0 if alive and not admin.errors and not report["classify_errors"] else 1


def soak(pid: int, base: str, tasks: list[str], args: argparse.Namespace) -> list[dict]:
    rng = random.Random(0)
    port = int(base.rsplit(":", 1)[1])

    def make(i: int) -> tuple[str, str, bytes, float | None]:
        texts = rng.sample(SENTENCES, rng.randint(1, 4))
        body = json.dumps({"task": rng.choice(tasks), "inputs": texts}).encode()
        return "POST", "/classify", body, None

    windows = []
    started = time.monotonic()
    print(
        "window  t_s   requests  errors  p50_ms  p99_ms  max_ms  rss_mib  rows/batch  load1",
        flush=True,
    )
    while time.monotonic() - started < args.minutes * 60:
        rows_before = metric_sum(base, "promptserve_batch_rows_sum")
        batches_before = metric_sum(base, "promptserve_batch_rows_count")
        outcomes = run(one_window(port, args.rate, args.window_s, make))
        batches = metric_sum(base, "promptserve_batch_rows_count") - batches_before
        rows = metric_sum(base, "promptserve_batch_rows_sum") - rows_before
        ms = [o.latency_s * 1000 for o in outcomes if o.status == 200]
        window = {
            "t_s": round(time.monotonic() - started),
            "requests": len(outcomes),
            "errors": sum(1 for o in outcomes if o.status != 200),
            "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms), 1) if ms else None,
            "rss_mib": round(rss_mib(pid), 1),
            "rows_per_batch": round(rows / batches, 1) if batches else None,
            "load1": round(os.getloadavg()[0], 2),  # the machine's, this script included
        }
        windows.append(window)
        print(
            f"{len(windows):>6}  {window['t_s']:>4}  {window['requests']:>8}  {window['errors']:>6}"
            f"  {window['p50_ms']:>6}  {window['p99_ms']:>6}  {window['max_ms']:>6}"
            f"  {window['rss_mib']:>7}  {window['rows_per_batch']:>10}  {window['load1']:>5}",
            flush=True,
        )
    return windows


async def one_window(port: int, rate: float, seconds: float, make: RequestMaker) -> list[Outcome]:
    client = Client("127.0.0.1", port)
    try:
        return await open_loop(client, rate, seconds, make)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
