"""Bearer tokens: admin routes need the admin token when one is set; classify has its own."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.helpers import MakeClient, assert_error, classify, prompt_bytes, random_spec, upload

ADMIN = "admin-secret"
READER = "classify-secret"
WRONG_HEADERS = [
    {},
    {"Authorization": "Bearer not-the-token"},
    {"Authorization": f"Basic {ADMIN}"},
    {"Authorization": ADMIN},
    {"Authorization": "Bearer"},
    {"Authorization": f"Bearer {ADMIN}x"},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response) -> None:
    assert_error(response, 401, "Unauthorized", "bearer token")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def guarded(make_client):  # type: ignore[no-untyped-def]
    """A server with an admin token and task 't' at versions 1 and 2."""
    client = make_client(admin_token=ADMIN)
    for seed in (1, 2):
        r = upload(client, "t", prompt_bytes(random_spec(32, seed=seed)), token=ADMIN)
        assert r.status_code == 201, r.text
    return client


@pytest.mark.parametrize(
    "headers", WRONG_HEADERS, ids=["none", "wrong", "basic", "no-scheme", "empty", "prefix-match"]
)
def test_admin_routes_refuse_a_missing_or_wrong_token(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    data = prompt_bytes(random_spec(32, seed=3))
    assert_unauthorized(guarded.put("/prompts/t", files={"file": ("p", data)}, headers=headers))
    assert_unauthorized(guarded.put("/prompts/new", files={"file": ("p", data)}, headers=headers))
    assert_unauthorized(guarded.post("/prompts/t/activate", json={"version": 1}, headers=headers))
    assert_unauthorized(guarded.delete("/prompts/t/versions/1", headers=headers))
    assert_unauthorized(guarded.delete("/prompts/t", headers=headers))
    state = guarded.get("/prompts/t").json()  # nothing changed
    assert (state["active"], [v["version"] for v in state["versions"]]) == (2, [1, 2])
    assert guarded.get("/prompts").json()["total"] == 1


def test_admin_routes_work_with_the_right_token(guarded: TestClient) -> None:
    r = guarded.post("/prompts/t/activate", json={"version": 1}, headers=bearer(ADMIN))
    assert r.status_code == 200, r.text
    assert guarded.delete("/prompts/t/versions/2", headers=bearer(ADMIN)).status_code == 204
    assert guarded.delete("/prompts/t", headers=bearer(ADMIN)).status_code == 204
    lower_scheme = {"Authorization": f"bearer {ADMIN}"}
    assert upload(guarded, "t", prompt_bytes(random_spec(32)), token=None).status_code == 401
    data = prompt_bytes(random_spec(32))
    r = guarded.put("/prompts/t", files={"file": ("p", data)}, headers=lower_scheme)
    assert r.status_code == 201, r.text


def test_reading_and_classifying_stay_open_with_only_an_admin_token(guarded: TestClient) -> None:
    assert guarded.get("/prompts").status_code == 200
    assert guarded.get("/prompts/t").status_code == 200
    assert classify(guarded, "t", "x").status_code == 200
    assert guarded.get("/metrics").status_code == 200


def test_classify_token_guards_classify_only(make_client: MakeClient) -> None:
    client = make_client(admin_token=ADMIN, classify_token=READER)
    upload(client, "t", prompt_bytes(random_spec(32)), token=ADMIN)
    for headers in [*WRONG_HEADERS, bearer(ADMIN)]:
        r = client.post("/classify", json={"task": "t", "inputs": "x"}, headers=headers)
        assert_unauthorized(r)
    r = client.post("/classify", json={"task": "t", "inputs": "x"}, headers=bearer(READER))
    assert r.status_code == 200, r.text
    assert_unauthorized(upload(client, "t", prompt_bytes(random_spec(32)), token=READER))


def test_classify_token_alone_leaves_admin_open(make_client: MakeClient) -> None:
    client = make_client(classify_token=READER)
    assert upload(client, "t", prompt_bytes(random_spec(32))).status_code == 201
    assert_unauthorized(classify(client, "t", "x"))


def test_without_an_admin_token_the_server_warns_at_start(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.api.app"):
        client = make_client()
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "admin token" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert upload(client, "t", prompt_bytes(random_spec(32))).status_code == 201  # open, as warned


def test_with_an_admin_token_there_is_no_warning(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.api.app"):
        make_client(admin_token=ADMIN)
    assert not [r for r in caplog.records if "admin token" in r.getMessage()]


def test_the_token_is_never_shown_in_errors_or_settings(make_client: MakeClient) -> None:
    client = make_client(admin_token=ADMIN)
    r = client.put("/prompts/t", files={"file": ("p", b"x")}, headers=bearer("guess"))
    assert ADMIN not in r.text
    assert ADMIN not in repr(client.app.state.settings)  # type: ignore[attr-defined]
