"""A real uvicorn server on loopback, in a thread of the test process, over an app we built.

For behaviour only real sockets show (a client that disconnects, concurrent connections, a fuzzer
that speaks HTTP), without the start-up cost of a server process.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def live_config(app: FastAPI) -> uvicorn.Config:
    return uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")


@contextlib.contextmanager
def serving(server: uvicorn.Server, timeout_s: float = 30.0) -> Iterator[str]:
    """Run `server` on a thread until the block ends; yields its base URL once it is ready."""
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.config.port}"
    try:
        _wait_ready(base, thread, timeout_s)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout_s)


@contextlib.contextmanager
def live_server(app: FastAPI, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 until the block ends; yields its base URL once it is ready."""
    with serving(uvicorn.Server(live_config(app)), timeout_s) as base:
        yield base


def _wait_ready(base: str, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert thread.is_alive(), "the server thread died"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.02)
    raise AssertionError("server never became ready")
