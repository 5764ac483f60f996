"""Uploads that were stored though unusable, or answered 500 (API audit, 2026-11-27): each is
now refused with 422 and stores nothing; the admin token is checked before a body is read; a
client that stalls its body gives back its queue place (408)."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from starlette.requests import Request

from app import upload_zip
from app.api.body import read_body
from app.errors import InvalidPrompt, RequestTimeout
from app.registry import Registry
from tests.helpers import assert_error, classify, identity, prompt_bytes, random_spec, upload

SPEC = random_spec(32)


def refused(client: TestClient, data: bytes, says: str, **form: str) -> None:
    assert_error(upload(client, "x", data, **form), 422, "InvalidPrompt", says)
    assert client.get("/prompts/x").status_code == 404, "nothing may be stored"
    assert client.get("/prompts").status_code == 200


@pytest.mark.parametrize(
    "metadata, form",
    [
        ({}, {"labels": '["ok", "\\udfff", "z"]'}),  # JSON escapes let a lone surrogate in
        ({"labels": '["ok", "\\udc00", "z"]'}, {}),
        ({"description": "fine", "metrics": '{"note": "\\ud800"}'}, {}),
    ],
)
def test_text_that_is_not_valid_unicode_is_refused(
    client: TestClient, metadata: dict[str, str], form: dict[str, str]
) -> None:
    """It was stored and made active, then every listing of the registry answered 500."""
    refused(client, prompt_bytes(SPEC, metadata), "not valid unicode", **form)


def test_json_nested_too_deep_or_with_huge_integers_is_refused(client: TestClient) -> None:
    """RecursionError and Python's 4,300-digit limit used to escape as 500s."""
    deep, huge = "[" * 100_000, "[" + "9" * 5_000 + "]"
    for form in ({"labels": deep}, {"labels": huge}):
        assert_error(upload(client, "x", prompt_bytes(SPEC), **form), 422, "InvalidRequest")
    refused(client, prompt_bytes(SPEC, {"metrics": deep}), "metrics")
    refused(client, prompt_bytes(SPEC, {"labels": huge}), "labels")


def test_values_that_overflow_the_backbone_are_refused_at_upload(client: TestClient) -> None:
    """A 3e38 prompt passed every static check and then failed every classify."""
    refused(
        client, prompt_bytes(replace(SPEC, prompt=torch.full_like(SPEC.prompt, 3e38))), "overflow"
    )
    assert upload(client, "x", prompt_bytes(SPEC)).status_code == 201  # ordinary values pass


def test_a_tensor_the_format_does_not_have_is_refused_by_name(client: TestClient) -> None:
    from tests.helpers import tensors_bytes

    tensors = {"prompt": SPEC.prompt, "head.weight": SPEC.head_weight, "head.bias": SPEC.head_bias}
    data = tensors_bytes({**tensors, "junk": torch.zeros(2)}, {"labels": json.dumps(SPEC.labels)})
    refused(client, data, "unexpected tensor(s) ['junk']")


def test_a_corrupt_deflate_stream_is_an_invalid_zip_not_a_crash() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("adapter_config.json", json.dumps({"k": list(range(400))}))
    data = bytearray(buffer.getvalue())
    start = data.index(b"adapter_config.json") + len("adapter_config.json")
    for i in range(start + 2, start + 22):
        data[i] ^= 0x5A  # zlib itself fails (invalid block type, distance too far back)
    with pytest.raises(InvalidPrompt, match="cannot be read"):
        upload_zip.unpack(bytes(data), {"adapter_config.json"}, 1 << 20)


def test_admin_routes_check_the_token_before_reading_the_body(make_client) -> None:  # type: ignore[no-untyped-def]
    """A malformed body was answered 422 before the missing token's 401, and an upload's whole
    body (up to max_upload_bytes) was read and spooled for a client with no token."""
    client = make_client(admin_token="s3cret")
    json_body = {"content-type": "application/json"}
    assert_error(client.post("/prompts/t/activate", content=b"{", headers=json_body), 401)
    form = {"content-type": "multipart/form-data; boundary=zz"}
    assert_error(client.put("/prompts/t", content=b"garbage", headers=form), 401)
    bearer = {"Authorization": "Bearer s3cret"}
    assert_error(client.put("/prompts/t", content=b"garbage", headers={**form, **bearer}), 422)
    response = client.put("/prompts/t", files={"file": ("p", prompt_bytes(SPEC))}, headers=bearer)
    assert response.status_code == 201, response.text


def test_a_stalled_body_times_out_with_408() -> None:
    async def stalled() -> None:
        async def receive() -> dict[str, object]:
            if not sent:
                sent.append(True)
                return {"type": "http.request", "body": b'{"task": ', "more_body": True}
            await asyncio.sleep(60)
            raise AssertionError("never reached")

        sent: list[bool] = []
        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        with pytest.raises(RequestTimeout, match="did not arrive within 0.05 s"):
            await read_body(request, 0.05)

    asyncio.run(stalled())


def test_a_stalled_classify_gives_back_its_queue_place(make_client) -> None:  # type: ignore[no-untyped-def]
    """Idle connections that sent headers only used to hold every door place: all classify
    requests got 503 for as long as they stayed."""
    client = make_client(body_timeout_s=0.2, queue_limit=64, max_client_batch=64)
    assert upload(client, "t", prompt_bytes(SPEC)).status_code == 201
    batcher = client.app.state.services.batcher
    statuses: list[int] = []

    async def stall() -> None:
        async def receive() -> dict[str, object]:
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        scope = {"type": "http", "method": "POST", "path": "/classify", "raw_path": b"/classify",
                 "root_path": "", "scheme": "http", "query_string": b"", "http_version": "1.1",
                 "headers": [(b"content-type", b"application/json"), (b"content-length", b"99")],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip
        await client.app(scope, receive, send)

    client.portal.call(stall)
    assert statuses == [408]
    assert batcher.admitted == 0, "the door place was given back"
    assert classify(client, "t", "still served").status_code == 200


def test_a_version_another_process_stored_is_never_overwritten(tmp_path: Path) -> None:
    """`promptserve train --prompts-dir` beside a running server: the server's next upload took
    the same number and replaced the trained file, and its state file could drop it on restart."""
    server, cli = (Registry(tmp_path, identity()) for _ in range(2))
    server.load()
    server.add_version("t", prompt_bytes(SPEC))
    cli.load()
    cli_version = cli.add_version("t", prompt_bytes(random_spec(32, seed=1)))
    assert cli_version.version == 2
    server.activate("t", 1)  # the server does not know version 2: its state must not forget it
    mine = server.add_version("t", prompt_bytes(random_spec(32, seed=2)))
    assert mine.version == 3, "number 2 was taken on disk: skipped, not overwritten"
    restarted = Registry(tmp_path, identity())
    restarted.load()
    state = restarted.state("t")
    assert sorted(state.versions) == [1, 2, 3] and state.active == 3
    assert state.versions[2].sha256 == cli_version.sha256


@pytest.mark.parametrize("key, value", [("token_dim", "32"), ("num_virtual_tokens", 4.0)])
def test_peft_sizes_must_be_integers(key: str, value: object) -> None:
    """A string token_dim was reported as "token_dim 32, but ... hidden size 32"."""
    from safetensors.torch import save

    from app.peft_format import task_from_adapter

    config = {"peft_type": "PROMPT_TUNING", "task_type": "SEQ_CLS", "token_dim": 32}
    config.update({"num_virtual_tokens": 4, key: value})
    files = {
        "adapter_config.json": json.dumps(config).encode(),
        "adapter_model.safetensors": save({"prompt_embeddings": torch.zeros(4, 32)}),
    }
    with pytest.raises(InvalidPrompt, match=f"{key} must be an integer"):
        task_from_adapter(files, identity(), labels=["a", "b"])


def test_a_head_that_overflows_for_ordinary_features_is_refused(client: TestClient) -> None:
    """Re-check of audit 4: a head of 1e38s passed the probe (its text happened to give finite
    scores) and failed on most other inputs."""
    refused(
        client,
        prompt_bytes(replace(SPEC, head_weight=torch.full_like(SPEC.head_weight, 1e38))),
        "head",
    )


def test_a_refused_request_with_a_stalled_body_is_answered_and_closed() -> None:
    """Re-check of audit 4: requests past the queue limit waited for their body with no limit
    before their 503, so stalled ones hung for good."""
    from app.api.admission import QueueGate

    async def refuse() -> list[dict[str, object]]:
        async def receive() -> dict[str, object]:
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}

        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        gate = QueueGate(lambda *_: None, admit=lambda: "queue full", body_timeout_s=0.05)  # type: ignore[arg-type]
        await gate({"type": "http", "path": "/classify"}, receive, send)  # type: ignore[arg-type]
        return sent

    start = asyncio.run(refuse())[0]
    assert start["status"] == 503
    assert (b"connection", b"close") in start["headers"]  # type: ignore[operator]


def test_a_task_another_process_created_is_taken_up_not_refused(tmp_path: Path) -> None:
    """Re-check of audit 4: a task first registered by the CLI beside a running server answered
    the server's upload with 409 ("holds no version this server can serve")."""
    server, cli = (Registry(tmp_path, identity()) for _ in range(2))
    server.load()
    cli.load()
    first = cli.add_version("new", prompt_bytes(SPEC))
    assert server.add_version("new", prompt_bytes(random_spec(32, seed=3))).version == 2
    assert server.state("new").versions[1].sha256 == first.sha256


def test_taking_up_a_task_never_removes_the_other_process_s_writes_in_flight(
    tmp_path: Path,
) -> None:
    """Code review, 2026-11-27: taking up a task another process created ran the start-up
    clean-up on its folder, which deletes temp files and versions past task.json's next_version:
    exactly what that process has on disk between writing a version and acknowledging it."""
    server, cli = (Registry(tmp_path, identity()) for _ in range(2))
    server.load()
    cli.load()
    cli.add_version("new", prompt_bytes(SPEC))
    in_flight = tmp_path / "new" / "v2.safetensors"  # linked, task.json not yet updated
    in_flight.write_bytes(prompt_bytes(random_spec(32, seed=4)))
    temp = tmp_path / "new" / ".tmp-in-flight"
    temp.write_bytes(b"half a file")
    assert server.add_version("new", prompt_bytes(random_spec(32, seed=3))).version == 3
    assert in_flight.is_file() and temp.is_file()
