"""Request body limits enforced while the body streams in, before anything parses it (413)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import domain_response
from app.errors import TooLarge

UPLOAD_OVERHEAD = 64 * 1024  # multipart boundaries and form fields around the file


class BodyLimit:
    """PUT /prompts/* may carry `upload_bytes` (plus form overhead); other routes `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes + UPLOAD_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "PUT" and scope["path"].startswith("/prompts/")
        limit = self.upload_bytes if is_upload else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        received = 0
        exceeded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise TooLarge(f"request body is over the limit of {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            if not exceeded:  # once over the limit, the app's own answer is replaced by a 413
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await self._reject(scope, receive, send, limit)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = domain_response(TooLarge(f"request body is over the limit of {limit} bytes"))
        await response(scope, receive, send)
