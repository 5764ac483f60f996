"""No input makes the server answer 500: hostile and malformed requests on every route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import assert_error, classify
from tests.test_api_errors import JSON


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("post", "/classify", {"json": {"task": "../../etc/passwd", "inputs": ["x"]}}),
        ("post", "/classify", {"json": {"task": "t" * 201, "inputs": ["x"]}}),
        ("post", "/classify", {"json": {"task": "t", "inputs": ["x"], "version": 10**30}}),
        ("post", "/classify", {"json": {"task": "t", "inputs": ["x"], "version": -1}}),
        ("post", "/classify", {"json": {"task": "t", "inputs": ["x"] * 10_000}}),
        ("post", "/classify", {"content": b"\x00\x01\x02", "headers": JSON}),
        ("post", "/classify", {"content": b"task=t", "headers": {"content-type": "text/plain"}}),
        ("post", "/classify", {"data": {"task": "t", "inputs": "x"}}),
        ("post", "/prompts/t/activate", {"json": {"version": 10**30}}),
        ("post", "/prompts/t/activate", {"content": b"{", "headers": JSON}),
        ("delete", "/prompts/t/versions/-1", {}),
        ("delete", "/prompts/t/versions/abc", {}),
        ("delete", "/prompts/t/versions/99999999999999999999999999", {}),
        ("get", "/prompts", {"params": {"limit": "many"}}),
        ("get", "/prompts", {"params": {"limit": 10**9}}),
        ("get", "/prompts/..%2F..%2Fetc", {}),
        ("put", "/prompts/t", {"files": {"file": ("p", b"")}}),
        ("put", "/prompts/t", {"files": {"file": ("p", b"\x08" + b"\x00" * 7 + b"{}")}}),
        ("put", "/prompts/t", {"files": {"file": ("p", (2**62).to_bytes(8, "little") + b"{")}}),
        ("put", "/prompts/t", {"files": {"other": ("p", b"x")}}),
        ("put", "/prompts/t", {"json": {"file": "x"}}),
    ],
    ids=[
        "task-path",
        "task-201-chars",
        "version-huge",
        "version-negative",
        "10k-inputs",
        "binary-json",
        "text-plain",
        "form-classify",
        "activate-huge",
        "activate-bad-json",
        "delete-negative",
        "delete-not-int",
        "delete-huge",
        "limit-not-int",
        "limit-huge",
        "get-encoded-path",
        "upload-empty",
        "upload-empty-header",
        "upload-huge-header-len",
        "upload-wrong-field",
        "upload-as-json",
    ],
)
def test_no_input_makes_the_server_answer_500(
    served: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    r = getattr(served, method)(path, **kwargs)
    assert 400 <= r.status_code < 500, r.text
    assert_error(r, r.status_code)
    assert classify(served, "t", "still fine").status_code == 200
