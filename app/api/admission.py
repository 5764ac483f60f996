"""Admission at the door: while the queue is full, /classify is refused with 503 before its body
is parsed, so that refusing stays cheap however hard the server is pushed (the service checks
again, exactly, once it knows how many texts a request holds)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response

GUARDED = "/classify"


class QueueGate:
    def __init__(self, app: ASGIApp, queue_full: Callable[[], str | None]) -> None:
        """`queue_full()` says why the queue admits nothing now, or None while it has room."""
        self.app = app
        self.queue_full = queue_full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = None
        if scope["type"] == "http" and scope["path"] == GUARDED:
            reason = self.queue_full()
        if reason is None:
            await self.app(scope, receive, send)
            return
        await _discard_body(receive)  # so the connection can carry the client's next request
        refusal = error_response(503, "Overloaded", reason, {"Retry-After": "1"})
        await refusal(scope, receive, send)


async def _discard_body(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
