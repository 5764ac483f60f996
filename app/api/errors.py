"""The one place domain errors become HTTP: status codes and one JSON error shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app import errors
from app.api.schemas import ErrorResponse

log = logging.getLogger(__name__)

STATUS_OF: dict[type[errors.PromptserveError], int] = {
    errors.TaskNotFound: 404,
    errors.VersionNotFound: 404,
    errors.InvalidTaskId: 422,
    errors.InvalidPrompt: 422,
    errors.InvalidRequest: 422,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.Unauthorized: 401,
    errors.Overloaded: 503,
    errors.NotReady: 503,
    errors.ShuttingDown: 503,
    errors.DeadlineExceeded: 504,
    errors.RequestTimeout: 408,
    errors.ClientDisconnected: 499,  # nginx's 'client closed request': only metrics see it
}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """A route's `responses`: the error statuses it can answer, for the OpenAPI spec."""
    return {code: {"model": ErrorResponse} for code in codes}


# 503: not ready yet, or draining.
CLASSIFY_ERRORS = error_responses(401, 404, 408, 413, 422, 503, 504)
NOT_READY = error_responses(503)


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


def domain_response(
    exc: errors.PromptserveError, extra_headers: dict[str, str] | None = None
) -> JSONResponse:
    """A domain error as HTTP: its status and headers, for the handler and the middlewares that
    answer before any route (the door, the drain, the body limit)."""
    status = next(code for kind, code in STATUS_OF.items() if isinstance(exc, kind))
    headers: dict[str, str] = {}
    if isinstance(exc, errors.Overloaded | errors.NotReady | errors.ShuttingDown):
        headers["Retry-After"] = "1"
    elif isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, errors.RequestTimeout):
        headers["Connection"] = "close"  # the rest of the body may still come: do not read it
    headers.update(extra_headers or {})
    return error_response(status, type(exc).__name__, str(exc), headers or None)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.PromptserveError)
    return domain_response(exc)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
        for err in exc.errors()
    ]
    return error_response(422, "InvalidRequest", "; ".join(problems) or "invalid request")


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # the framework could not parse the body (bad UTF-8, bad multipart)
        return error_response(422, "InvalidRequest", f"malformed request body: {exc.detail}")
    kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:  # Starlette names only the first route's methods for the path
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return error_response(exc.status_code, kind, str(exc.detail), headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API answers at this path, read from its (cached) OpenAPI paths."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "InternalError", "internal error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.PromptserveError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
