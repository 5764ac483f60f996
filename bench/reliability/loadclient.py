"""A lean open-loop HTTP/1.1 load client on asyncio streams, for overload and soak scripts.

Open loop: request i is due at start + i / rate whatever happened to the earlier ones, and its
latency is counted from when it was due (no coordinated omission). Keep-alive connections are
reused when idle and opened when none is, so a slow server sees ever more connections, as it
would from real clients. A request can be abandoned: its connection is closed after
`leave_after_s`, before the answer, as a client that gives up does. Runs on uvloop when present.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

# Request number i -> (method, path, body, leave_after_s or None).
RequestMaker = Callable[[int], tuple[str, str, bytes, float | None]]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
T = TypeVar("T")


@dataclass
class Outcome:
    status: int  # 0: socket error; -1: the client left on purpose
    latency_s: float
    retry_after: str | None = None
    rows: int = 0


class Client:
    """Keep-alive connections to one server: at most `max_connections`, opened on demand."""

    def __init__(self, host: str, port: int, max_connections: int = 2048) -> None:
        self.host, self.port, self.max_connections = host, port, max_connections
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()
        self.open_now = 0
        self.opened = 0  # over the client's life

    async def _acquire(self) -> Connection:
        if self.idle.empty() and self.open_now < self.max_connections:
            self.open_now += 1
            self.opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.open_now -= 1
                raise
        return await self.idle.get()  # every connection busy: wait, as a real client pool does

    def _discard(self, connection: Connection) -> None:
        connection[1].close()
        self.open_now -= 1

    async def request(
        self, method: str, path: str, body: bytes, due: float, leave_after_s: float | None = None
    ) -> Outcome:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            connection = await self._acquire()
        except OSError:
            return Outcome(0, time.perf_counter() - due)
        reader, writer = connection
        try:
            writer.write(head + body)
            if leave_after_s is not None:
                await asyncio.sleep(leave_after_s)
                self._discard(connection)
                return Outcome(-1, time.perf_counter() - due)
            status, headers, payload = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self._discard(connection)
            return Outcome(0, time.perf_counter() - due)
        latency = time.perf_counter() - due
        if headers.get("connection") == "close":
            self._discard(connection)
        else:
            self.idle.put_nowait(connection)
        rows = len(json.loads(payload)["predictions"]) if status == 200 and payload else 0
        return Outcome(status, latency, headers.get("retry-after"), rows)

    def close(self) -> None:
        while not self.idle.empty():
            self._discard(self.idle.get_nowait())


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def open_loop(
    client: Client,
    rate: float,
    seconds: float,
    make_request: RequestMaker,
) -> list[Outcome]:
    """Send `rate` requests a second for `seconds`; wait for every answer; outcomes in order."""
    start = time.perf_counter()
    total = int(rate * seconds)
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        method, path, body, leave = make_request(i)
        tasks.append(asyncio.ensure_future(client.request(method, path, body, due, leave)))
    return list(await asyncio.gather(*tasks))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (a cheaper client leaves the server more CPU).

    The garbage collector is off while it runs: its full collections, over torch (imported by
    the scripts) and tens of thousands of finished requests, paused the client for up to 65 ms,
    which its latencies then counted as the server's. A run's cycles are freed afterwards."""
    gc.collect()
    gc.disable()
    try:
        return _run(coroutine)
    finally:
        gc.enable()
        gc.collect()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)
