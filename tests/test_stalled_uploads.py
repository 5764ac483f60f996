"""An upload's body may take long in all (up to max_upload_bytes on a slow link), but a client that
goes quiet mid-body gets 408 after `body_timeout_s` and nothing is stored. Before, an
authenticated upload that stalled held its connection and spooled file for as long as it liked."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from tests.helpers import prompt_bytes, random_spec

BOUNDARY = b"zz"
TOKEN = "s3cret"


def multipart(data: bytes) -> bytes:
    head = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="p"\r\n\r\n'
    return head + data + b"\r\n--zz--\r\n"


def put_in_pieces(client: TestClient, body: bytes, pieces: int, gap_s: float, stall: bool) -> int:
    """PUT /prompts/t straight to the app, `body` in `pieces` with `gap_s` between them; with
    `stall`, the last piece never comes. Returns the response's status."""
    size = -(-len(body) // pieces)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    if stall:
        chunks.pop()
    statuses: list[int] = []

    async def run() -> None:
        sent = 0

        async def receive() -> dict[str, object]:
            nonlocal sent
            if sent:
                await asyncio.sleep(gap_s)
            if sent == len(chunks):  # stalled: nothing more comes until the client gives up
                await asyncio.sleep(60)
                return {"type": "http.disconnect"}
            sent += 1
            more = sent < len(chunks) or stall
            return {"type": "http.request", "body": chunks[sent - 1], "more_body": more}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        headers = [
            (b"content-type", b"multipart/form-data; boundary=" + BOUNDARY),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {TOKEN}".encode()),
        ]
        scope = {"type": "http", "method": "PUT", "path": "/prompts/t", "raw_path": b"/prompts/t",
                 "root_path": "", "scheme": "http", "query_string": b"", "http_version": "1.1",
                 "headers": headers, "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80)}  # fmt: skip
        await client.app(scope, receive, send)

    client.portal.call(run)
    return statuses[0]


def test_an_upload_that_goes_quiet_mid_body_gets_408_and_stores_nothing(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(body_timeout_s=0.2, admin_token=TOKEN)
    body = multipart(prompt_bytes(random_spec(32)))
    assert put_in_pieces(client, body, pieces=4, gap_s=0.01, stall=True) == 408
    assert client.get("/prompts/t").status_code == 404, "nothing may be stored"


def test_a_slow_but_steady_upload_may_take_longer_than_the_timeout(make_client) -> None:  # type: ignore[no-untyped-def]
    """The limit is on pauses, not on the whole upload: 8 pieces 0.1 s apart take 0.7 s."""
    client = make_client(body_timeout_s=0.3, admin_token=TOKEN)
    body = multipart(prompt_bytes(random_spec(32)))
    assert put_in_pieces(client, body, pieces=8, gap_s=0.1, stall=False) == 201
    assert client.get("/prompts/t").json()["active"] == 1
