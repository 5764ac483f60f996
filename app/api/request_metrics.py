"""Request metrics as a plain ASGI middleware: count and time every request by route template."""

from __future__ import annotations

import time
from collections.abc import MutableMapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute] = ()) -> None:
        """`routes`: the app's routes, to name those of requests answered before routing."""
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = _route_template(scope, self.routes)
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - started)


def _route_template(scope: MutableMapping[str, Any], routes: Sequence[BaseRoute]) -> str:
    """The matched route's path template, so label values stay few ('/prompts/{task}').

    A request answered before routing (refused at the door: 503, 413, draining) has no route in
    its scope yet: its path is matched here, so it counts under its route, not 'unmatched'."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] != Match.NONE), None)
    return getattr(route, "path", None) or "unmatched"
