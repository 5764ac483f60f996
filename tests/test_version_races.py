"""Classify racing with deletes and uploads: a request gets the tensors of the version it names.

Each test holds one request inside its prompt load (the registry's disk read) while the admin
routes change the task, then checks what every request was answered with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from app.registry import Registry
from app.task import TaskSpec
from tests.helpers import classify, prompt_bytes, random_spec, upload


class HeldRead:
    """Registry.read_spec with a hold: `before` or after reading the file, until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, before: bool) -> None:
        self.armed, self.reached, self.proceed = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        real = Registry.read_spec

        def read_spec(registry: Registry, *args: object, **kwargs: object) -> TaskSpec:
            if self.armed.is_set() and before:
                self._hold()
            spec = real(registry, *args, **kwargs)  # type: ignore[arg-type]
            if self.armed.is_set() and not before:
                self._hold()
            return spec

        monkeypatch.setattr(Registry, "read_spec", read_spec)

    def _hold(self) -> None:
        self.armed.clear()
        self.reached.set()
        assert self.proceed.wait(30), "the test never released the read"


def in_background(call: Callable[[], Response]) -> tuple[threading.Thread, list[Response]]:
    answers: list[Response] = []
    thread = threading.Thread(target=lambda: answers.append(call()))
    thread.start()
    return thread, answers


def scores(response: Response) -> dict[str, float]:
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]["scores"]


def test_a_task_made_again_never_serves_the_old_tasks_tensors(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a load of the old task cached after the delete kept answering for the new
    task's version 1 (the cache was keyed by task and version number only)."""
    client = make_client()
    first, second = random_spec(32, seed=1), random_spec(32, seed=2)
    assert upload(client, "t", prompt_bytes(first)).status_code == 201
    held = HeldRead(monkeypatch, before=False)
    held.armed.set()
    thread, answers = in_background(
        lambda: classify(client, "t", "hello world", return_all_scores=True)
    )
    assert held.reached.wait(30)  # the first task's file is read, not yet cached
    assert client.delete("/prompts/t").status_code == 204
    assert upload(client, "t", prompt_bytes(second)).json()["version"] == 1
    held.proceed.set()
    thread.join(30)

    after = classify(client, "t", "hello world", return_all_scores=True)
    # Regression (review): the first task's late load was kept in the cache after its delete.
    assert client.app.state.services.classify.cache.stats().resident == 1  # type: ignore[attr-defined]
    fresh = classify(make_client(), "t", "hello world", return_all_scores=True)  # from disk
    assert scores(after) == scores(fresh)
    assert scores(answers[0]) != scores(fresh)  # in flight before the delete: the first task


def test_a_request_for_the_active_version_outlives_its_versions_deletion(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a request that arrived while v1 was active got 404 when v2 was uploaded and
    v1 deleted before v1's tensors were loaded. It asked for the active version: it gets v2."""
    client = make_client()
    assert upload(client, "t", prompt_bytes(random_spec(32, seed=1))).status_code == 201
    held = HeldRead(monkeypatch, before=True)
    held.armed.set()
    thread, answers = in_background(lambda: classify(client, "t", "hello"))
    assert held.reached.wait(30)  # resolved to v1, its file not read yet
    assert upload(client, "t", prompt_bytes(random_spec(32, seed=2))).json()["version"] == 2
    assert client.delete("/prompts/t/versions/1").status_code == 204
    held.proceed.set()
    thread.join(30)

    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["version"] == 2


def test_a_request_that_names_a_deleted_version_is_told_so(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    assert upload(client, "t", prompt_bytes(random_spec(32, seed=1))).status_code == 201
    assert upload(client, "t", prompt_bytes(random_spec(32, seed=2))).status_code == 201
    held = HeldRead(monkeypatch, before=True)
    held.armed.set()
    thread, answers = in_background(lambda: classify(client, "t", "hello", version=1))
    assert held.reached.wait(30)
    assert client.delete("/prompts/t/versions/1").status_code == 204
    held.proceed.set()
    thread.join(30)

    assert answers[0].status_code == 404, answers[0].text
    assert answers[0].json()["error"]["type"] == "VersionNotFound"
