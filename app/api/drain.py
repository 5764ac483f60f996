"""Graceful drain: once it begins, /readyz says 503 and no new work is admitted; the requests
already in flight are counted so the server can exit when they are done.

Only the liveness probe and the metrics scrape are still answered normally while draining.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import domain_response
from app.errors import ShuttingDown

ALWAYS_ANSWERED = ("/healthz", "/metrics")
READINESS = "/readyz"


class Drain:
    """Whether new work is still admitted, and how many admitted requests are in flight."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.in_flight = 0
        self._began: float | None = None

    @property
    def draining(self) -> bool:
        return self._began is not None

    @property
    def expired(self) -> bool:
        """The grace period is over: whatever is still in flight must be cut off now."""
        return self._began is not None and time.monotonic() - self._began >= self.grace_s

    def begin(self) -> None:
        if self._began is None:
            self._began = time.monotonic()


class DrainGate:
    """ASGI middleware: counts requests in flight; while draining, refuses new ones with 503."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in ALWAYS_ANSWERED:
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            refusal = domain_response(
                ShuttingDown(
                    "the server is shutting down and takes no new work; retry on another instance"
                ),
                {"Connection": "close"},
            )
            await refusal(scope, receive, send)
            return
        if path == READINESS:  # a probe, not work: never holds up the drain
            await self.app(scope, receive, send)
            return
        self.drain.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.in_flight -= 1
