"""Every guarded route, one at a time: no token and a wrong token get 401 with
`WWW-Authenticate: Bearer` and change nothing; the right token works."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.helpers import MakeClient, assert_error, prompt_bytes, random_spec, upload

ADMIN, READER = "admin-secret", "classify-secret"
Call = Callable[[TestClient, dict[str, str]], object]

ROUTES: dict[str, tuple[Call, int]] = {
    "classify": (
        lambda c, h: c.post("/classify", json={"task": "t", "inputs": "x"}, headers=h),
        200,
    ),
    "upload-new-version": (
        lambda c, h: c.put(
            "/prompts/t", files={"file": ("p", prompt_bytes(random_spec(32)))}, headers=h
        ),
        201,
    ),
    "upload-new-task": (
        lambda c, h: c.put(
            "/prompts/u", files={"file": ("p", prompt_bytes(random_spec(32)))}, headers=h
        ),
        201,
    ),
    "activate": (lambda c, h: c.post("/prompts/t/activate", json={"version": 1}, headers=h), 200),
    "delete-version": (lambda c, h: c.delete("/prompts/t/versions/1", headers=h), 204),
    "delete-task": (lambda c, h: c.delete("/prompts/t", headers=h), 204),
}


@pytest.fixture
def guarded(make_client: MakeClient) -> TestClient:
    """Task 't' at versions 1 and 2 (2 active), both tokens set."""
    client = make_client(admin_token=ADMIN, classify_token=READER)
    for seed in (1, 2):
        r = upload(client, "t", prompt_bytes(random_spec(32, seed=seed)), token=ADMIN)
        assert r.status_code == 201, r.text
    return client


def state(client: TestClient) -> object:
    return client.get("/prompts/t").json(), client.get("/prompts").json()["total"]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("token", ["none", "wrong", "right"])
def test_each_guarded_route_with_without_and_with_a_wrong_token(
    guarded: TestClient, route: str, token: str
) -> None:
    call, success = ROUTES[route]
    right = READER if route == "classify" else ADMIN
    headers = {
        "none": {},
        "wrong": {"Authorization": f"Bearer {right}-not"},
        "right": {"Authorization": f"Bearer {right}"},
    }[token]
    before = state(guarded)
    response = call(guarded, headers)
    if token == "right":
        assert response.status_code == success, response.text  # type: ignore[attr-defined]
        return
    assert_error(response, 401, "Unauthorized", "bearer token")  # type: ignore[arg-type]
    assert response.headers["www-authenticate"] == "Bearer"  # type: ignore[attr-defined]
    assert state(guarded) == before, "a refused request changed the registry"
