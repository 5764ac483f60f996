"""Closed-loop HTTP load on POST /classify: wrk when installed, else a lean asyncio client.

Both keep `concurrency` keep-alive HTTP/1.1 connections, each sending its next request as soon
as the last response arrives, with bodies taken in turn from a file of JSON lines. wrk runs one
thread (`-t1`): on 2 cores, the load generator must cost the server as little CPU as possible.
Where cores are plenty (a GPU machine), the asyncio client can run as several processes that
share the connections, so that one Python thread does not cap the load:

    python bench/loadgen.py URL BODIES CONCURRENCY SECONDS   # one such process; prints its tally
"""

import argparse
import asyncio
import itertools
import json
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cputime import own_cpu_seconds

WRK_SCRIPT = Path(__file__).with_name("wrk_classify.lua")
REQUEST_TIMEOUT_S = 30


@dataclass
class LoadResult:
    tool: str
    duration_s: float
    statuses: dict[int, int]  # responses by HTTP status
    socket_errors: int  # connect/read/write errors and timeouts
    p50_ms: float
    p99_ms: float
    loadgen_cpu_s: float  # CPU time the load generator itself used

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def failed(self) -> int:
        return sum(self.statuses.values()) - self.ok + self.socket_errors

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.duration_s


def choose_tool(requested: str) -> str:
    if requested == "auto":
        return "wrk" if shutil.which("wrk") else "asyncio"
    if requested == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed: apt-get install -y wrk, or use --loadgen asyncio")
    return requested


def run_load(
    url: str,
    bodies: Path,
    concurrency: int,
    seconds: float,
    tool: str,
    cpus: str | None,
    processes: int = 1,
) -> LoadResult:
    """Load `url` for `seconds` (whole seconds for wrk); `cpus`, a taskset list, pins wrk.

    `processes` > 1 runs the asyncio client as that many child processes."""
    if tool == "wrk":
        return _run_wrk(url, bodies, concurrency, seconds, cpus)
    if processes > 1:
        return _run_asyncio_processes(url, bodies, concurrency, seconds, processes)
    cpu_before = own_cpu_seconds()
    tally = asyncio.run(_run_asyncio(url, bodies, concurrency, seconds))
    return _result(tally, seconds, own_cpu_seconds() - cpu_before)


def _run_wrk(
    url: str, bodies: Path, concurrency: int, seconds: float, cpus: str | None
) -> LoadResult:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
    command += [f"--timeout={REQUEST_TIMEOUT_S}s", "-s", str(WRK_SCRIPT), url, "--", str(bodies)]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    cpu_before = own_cpu_seconds(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, capture_output=True, text=True)
    cpu_used = own_cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_before
    lines = [line for line in completed.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    return LoadResult(
        tool="wrk",
        duration_s=raw["duration_us"] / 1e6,
        statuses={int(status): count for status, count in raw["statuses"].items()},
        socket_errors=raw["socket_errors"] + raw["timeouts"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        loadgen_cpu_s=cpu_used,
    )


@dataclass
class _Tally:
    """What one asyncio client counted: responses by status, socket errors, latencies (s)."""

    statuses: dict[int, int]
    socket_errors: int
    latencies: list[float]


def _result(tally: _Tally, seconds: float, cpu_s: float) -> LoadResult:
    latencies = sorted(tally.latencies)
    return LoadResult(
        tool="asyncio",
        duration_s=seconds,
        statuses=tally.statuses,
        socket_errors=tally.socket_errors,
        p50_ms=1000 * _percentile(latencies, 0.50),
        p99_ms=1000 * _percentile(latencies, 0.99),
        loadgen_cpu_s=cpu_s,
    )


def _run_asyncio_processes(
    url: str, bodies: Path, concurrency: int, seconds: float, processes: int
) -> LoadResult:
    """`processes` clients of about concurrency/processes connections each, started together;
    their tallies are merged, so p50/p99 are over every request."""
    start_at = time.time() + 1.0  # every child imported and connected-ready by then
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    cpu_before = own_cpu_seconds(resource.RUSAGE_CHILDREN)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                url,
                str(bodies),
                str(share),
                str(seconds),
                f"--start-at={start_at}",
                f"--offset={i / processes}",
            ],  # fmt: skip
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, share in enumerate(shares)
        if share > 0
    ]
    merged = _Tally({}, 0, [])
    for child in children:
        stdout, _ = child.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith("BENCH_RESULT ")]
        if child.returncode != 0 or not lines:
            raise RuntimeError(f"load generator process failed ({child.returncode}):\n{stdout}")
        raw = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
        for status, count in raw["statuses"].items():
            merged.statuses[int(status)] = merged.statuses.get(int(status), 0) + count
        merged.socket_errors += raw["socket_errors"]
        merged.latencies += raw["latencies"]
    cpu_used = own_cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_before
    return _result(merged, seconds, cpu_used)


async def _run_asyncio(
    url: str, bodies_path: Path, concurrency: int, seconds: float, offset: float = 0.0
) -> _Tally:
    """`offset` (0..1) starts the cycle of bodies that far in, so processes send different ones."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    )
    requests = [
        f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        for body in bodies_path.read_bytes().splitlines()
        if body
    ]
    skip = int(offset * len(requests))
    request_cycle = itertools.cycle(requests[skip:] + requests[:skip])
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = Counter[str]()
    start = time.perf_counter()
    deadline = start + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                errors["connect"] += 1
                await asyncio.sleep(0.1)
                continue
            try:
                keep_alive = True
                while keep_alive and time.perf_counter() < deadline:
                    sent = time.perf_counter()
                    writer.write(next(request_cycle))
                    status, keep_alive = await _read_response(reader)
                    if (received := time.perf_counter()) <= deadline:
                        latencies.append(received - sent)
                        statuses[status] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors["read"] += 1
            finally:
                writer.close()

    tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
    _, unfinished = await asyncio.wait(tasks, timeout=seconds + REQUEST_TIMEOUT_S)
    for task in unfinished:
        task.cancel()
    return _Tally(dict(statuses), sum(errors.values()), latencies)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one HTTP/1.1 response whose body has a Content-Length."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") != "close"


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[round(fraction * (len(sorted_values) - 1))]


def main() -> None:
    """One client process of `_run_asyncio_processes`: loads, then prints its tally as JSON."""
    parser = argparse.ArgumentParser(description="one asyncio load generator process")
    parser.add_argument("url")
    parser.add_argument("bodies", type=Path)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--start-at", type=float, default=0.0, help="time.time() to start at")
    parser.add_argument("--offset", type=float, default=0.0, help="0..1: where bodies start")
    args = parser.parse_args()
    time.sleep(max(0.0, args.start_at - time.time()))
    tally = asyncio.run(
        _run_asyncio(args.url, args.bodies, args.concurrency, args.seconds, args.offset)
    )
    latencies = [round(latency, 6) for latency in tally.latencies]
    raw = {"statuses": tally.statuses, "socket_errors": tally.socket_errors, "latencies": latencies}
    print("BENCH_RESULT " + json.dumps(raw))


if __name__ == "__main__":
    main()
