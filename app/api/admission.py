"""Admission at the door: each /classify request must get a place in the queue before its body is
parsed, or it is refused with 503 at once, so that refusing stays cheap however hard the server is
pushed. The place is held until the request's rows are queued (the service checks again, exactly,
once it knows how many texts the request holds)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import domain_response
from app.batch_types import Admission
from app.errors import Overloaded

GUARDED = "/classify"
STATE_KEY = "admission"  # request.state.admission: the place held for the request


class QueueGate:
    def __init__(
        self,
        app: ASGIApp,
        admit: Callable[[], Admission | str | None],
        body_timeout_s: float,
    ) -> None:
        """`admit()` holds a queue place for one request (an Admission), says why there is none
        (a str), or gives None while there is no queue yet (the server is starting). A refused
        request's body is read and dropped for at most `body_timeout_s`."""
        self.app = app
        self.admit = admit
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GUARDED:
            await self.app(scope, receive, send)
            return
        admitted = self.admit()
        if isinstance(admitted, str):
            headers = {}
            try:  # read to its end, so the connection can carry the client's next request
                async with asyncio.timeout(self.body_timeout_s):
                    await _discard_body(receive)
            except TimeoutError:  # a stalled body: answer now, and close the connection
                headers["Connection"] = "close"
            refusal = domain_response(Overloaded(admitted), headers)
            await refusal(scope, receive, send)
            return
        if admitted is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = admitted
        try:
            await self.app(scope, receive, send)
        finally:
            admitted.release()  # a no-op once the request's rows were queued


async def _discard_body(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
