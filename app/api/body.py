"""JSON request bodies read by hand: validated in one pydantic call, after the route's checks.

A route that declares its body as a parameter has FastAPI read and validate it before any
dependency runs, so a malformed body was answered 422 before a missing token's 401. Routes
that must check first (a token, a queue place) take the bare Request and call parse_body."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.types import Message

from app.errors import RequestTimeout

Body = TypeVar("Body", bound=BaseModel)


async def read_body(request: Request, timeout_s: float) -> bytes:
    """The whole body, or RequestTimeout once `timeout_s` passes without it: a client that
    sends headers and then stalls must not hold what the request holds (a queue place) forever."""
    try:
        async with asyncio.timeout(timeout_s):  # no extra task, unlike wait_for: the hot path
            return await request.body()
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout_s:g} s") from None


def idle_limited(request: Request, idle_s: float) -> Request:
    """The request, its body read with at most `idle_s` between two pieces (else RequestTimeout).

    For uploads (up to max_upload_bytes): a slow link may take longer than `idle_s` in all, but
    a client that goes quiet mid-body must not hold its connection and spooled file for good."""
    receive = request.receive

    async def receive_or_time_out() -> Message:
        try:
            async with asyncio.timeout(idle_s):
                return await receive()
        except TimeoutError:
            stalled = f"the request body stalled: nothing came for {idle_s:g} s"
            raise RequestTimeout(stalled) from None

    return Request(request.scope, receive_or_time_out)


def documented(model: type[BaseModel]) -> dict[str, object]:
    """The route's `openapi_extra`: the JSON body it reads by hand, as /docs should show it."""
    schema = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": schema}}


def parse_body(model: type[Body], content_type: str, raw: bytes) -> Body:
    """The JSON body, validated; problems raised as FastAPI reports them (422, located in body).

    Like FastAPI's strict default, only a JSON content type is read as JSON: a text/plain or
    form body (what a browser may send cross-site without asking) is refused."""
    kind = content_type.partition(";")[0].strip().lower()
    if not (
        kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))
    ):
        shown = kind or "none"
        raise RequestValidationError(
            [
                {
                    "type": "content_type",
                    "loc": ("body",),
                    "msg": f"expected Content-Type application/json, got {shown}",
                }
            ]
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        for problem in problems:
            if problem["type"] == "json_invalid":
                problem["msg"] = f"malformed request body: {problem['msg']}"
        raise RequestValidationError(
            [{**problem, "loc": ("body", *problem["loc"])} for problem in problems]
        ) from None
