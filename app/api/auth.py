"""Bearer-token checks for admin and (optionally) classify routes; constant-time comparison."""

from __future__ import annotations

import hmac

from fastapi import Request
from pydantic import SecretStr

from app.errors import Unauthorized


def check_bearer(request: Request, expected: SecretStr | None) -> None:
    """No token configured: open. Otherwise the Authorization header must carry exactly it."""
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.get_secret_value().encode()
    ):
        raise Unauthorized("missing or wrong bearer token")


async def require_admin(request: Request) -> None:
    check_bearer(request, request.app.state.settings.admin_token)
