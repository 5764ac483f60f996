"""Client disconnects: a request whose client has gone stops waiting, so its queued rows drop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from app.errors import ClientDisconnected

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientDisconnected.

    Cancelling the work cancels its wait in the batcher, which takes its rows out of the queue:
    nothing is computed for a client that is no longer there. Call it after the body is read.
    """
    working = asyncio.ensure_future(work)
    watching = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({working, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not working.done():
            working.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await working
    if working.cancelled():
        raise ClientDisconnected("the client disconnected before its answer was ready")
    return working.result()


async def _disconnect(request: Request) -> None:
    """Returns when the server reports the client gone (once the body is read, nothing else
    arrives on this request's channel but that, or the end of the response)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
