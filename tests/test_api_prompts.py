"""The /prompts routes: upload, list, inspect, activate (rollback), delete, and restarts."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.schemas import TaskSummary
from app.versions import TaskState
from tests.helpers import MakeClient, assert_error, classify, prompt_bytes, random_spec, upload

TEXTS = ["a fine day", "a terrible day", "an ordinary day"]


def test_upload_answers_201_with_the_new_versions_record(client: TestClient) -> None:
    spec = random_spec(32, prompt_len=6, num_labels=2, pooling="cls")
    r = upload(
        client,
        "sentiment",
        prompt_bytes(spec, labels=False),
        labels='["neg", "pos"]',
        description="movie reviews",
    )
    assert r.status_code == 201, r.text
    record = r.json()
    shown = ("task", "version", "active", "labels", "pooling", "prompt_len")
    assert {k: record[k] for k in shown} == {
        "task": "sentiment",
        "version": 1,
        "active": True,
        "labels": ["neg", "pos"],
        "pooling": "cls",
        "prompt_len": 6,
    }
    assert record["description"] == "movie reviews"
    assert re.fullmatch(r"[0-9a-f]{64}", record["sha256"])
    assert record["size_bytes"] > 0 and record["created"]
    assert classify(client, "sentiment", "x").json()["predictions"][0]["label"] in ("neg", "pos")


def test_the_record_describes_the_stored_file(client: TestClient, tmp_path: Path) -> None:
    record = upload(client, "t", prompt_bytes(random_spec(32))).json()
    stored = (tmp_path / "prompts" / "t" / "v1.safetensors").read_bytes()
    assert record["sha256"] == hashlib.sha256(stored).hexdigest()
    assert record["size_bytes"] == len(stored)


def test_uploads_number_versions_and_get_shows_them_all(client: TestClient) -> None:
    for seed in range(3):
        record = upload(client, "t", prompt_bytes(random_spec(32, seed=seed))).json()
        assert record["version"] == seed + 1
    body = client.get("/prompts/t").json()
    assert body["task"] == "t" and body["active"] == 3
    versions = [(v["version"], v["active"]) for v in body["versions"]]
    assert versions == [(1, False), (2, False), (3, True)]


def test_listing_is_paginated_in_task_order(client: TestClient) -> None:
    names = ["e", "a", "d", "c", "b"]
    for name in names:
        upload(client, name, prompt_bytes(random_spec(32)))
    pages = [
        client.get("/prompts", params={"offset": offset, "limit": 2}).json() for offset in (0, 2, 4)
    ]
    assert [[t["task"] for t in page["tasks"]] for page in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert {(page["total"], page["limit"]) for page in pages} == {(5, 2)}
    assert [page["offset"] for page in pages] == [0, 2, 4]
    beyond = client.get("/prompts", params={"offset": 10}).json()
    assert (beyond["tasks"], beyond["total"]) == ([], 5)


def test_listing_summarises_each_tasks_active_version(client: TestClient) -> None:
    upload(client, "t", prompt_bytes(random_spec(32, num_labels=2)), labels='["no", "yes"]')
    later = random_spec(32, prompt_len=7, num_labels=3)
    upload(client, "t", prompt_bytes(later), description="three")
    client.post("/prompts/t/activate", json={"version": 1})
    [summary] = client.get("/prompts").json()["tasks"]
    assert summary == {
        "task": "t",
        "active": 1,
        "versions": [1, 2],
        "labels": ["no", "yes"],
        "pooling": "mean",
        "prompt_len": 4,
        "description": "",
    }


def test_a_listing_survives_tasks_deleted_while_it_is_built(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the listing took the task ids, then looked each one up, so a task deleted
    in between made GET /prompts answer 404 TaskNotFound (97 of 4,860 listings under churn)."""
    for name in ("a", "b", "c"):
        upload(client, name, prompt_bytes(random_spec(32)))
    registry = client.app.state.services.registry  # type: ignore[attr-defined]
    summarise = TaskSummary.of

    def delete_the_others_first(state: TaskState) -> TaskSummary:
        for other in set(registry.task_ids()) - {state.task}:
            registry.delete_task(other)
        return summarise(state)

    monkeypatch.setattr(TaskSummary, "of", delete_the_others_first)
    r = client.get("/prompts")
    assert r.status_code == 200, r.text
    assert [t["task"] for t in r.json()["tasks"]] == ["a", "b", "c"]  # as they were when asked


def test_an_empty_registry_lists_nothing(client: TestClient) -> None:
    assert client.get("/prompts").json() == {"tasks": [], "total": 0, "offset": 0, "limit": 100}


def test_activate_rolls_back_and_forward(client: TestClient) -> None:
    upload(client, "t", prompt_bytes(random_spec(32, seed=1)))
    v1 = classify(client, "t", TEXTS, return_all_scores=True).json()["predictions"]
    upload(client, "t", prompt_bytes(random_spec(32, seed=2)))
    v2 = classify(client, "t", TEXTS, return_all_scores=True).json()["predictions"]

    r = client.post("/prompts/t/activate", json={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json()["active"] == 1
    rolled_back = classify(client, "t", TEXTS, return_all_scores=True).json()
    assert (rolled_back["version"], rolled_back["predictions"]) == (1, v1)

    assert client.post("/prompts/t/activate", json={"version": 2}).json()["active"] == 2
    assert classify(client, "t", TEXTS, return_all_scores=True).json()["predictions"] == v2


def test_activating_a_missing_version_is_404(client: TestClient) -> None:
    upload(client, "t", prompt_bytes(random_spec(32)))
    assert_error(client.post("/prompts/t/activate", json={"version": 5}), 404, "VersionNotFound")
    assert_error(client.post("/prompts/nope/activate", json={"version": 1}), 404, "TaskNotFound")


def test_deleting_a_version_removes_it_but_never_the_active_one(client: TestClient) -> None:
    upload(client, "t", prompt_bytes(random_spec(32, seed=1)))
    upload(client, "t", prompt_bytes(random_spec(32, seed=2)))
    assert classify(client, "t", "x", version=1).status_code == 200  # now in the device cache

    assert_error(client.delete("/prompts/t/versions/2"), 409, "Conflict", "active")
    r = client.delete("/prompts/t/versions/1")
    assert r.status_code == 204 and r.content == b""

    assert [v["version"] for v in client.get("/prompts/t").json()["versions"]] == [2]
    assert_error(classify(client, "t", "x", version=1), 404, "VersionNotFound")
    assert_error(client.delete("/prompts/t/versions/1"), 404, "VersionNotFound")
    assert classify(client, "t", "x").json()["version"] == 2


def test_deleting_a_task_stops_serving_it(client: TestClient) -> None:
    upload(client, "t", prompt_bytes(random_spec(32)))
    upload(client, "other", prompt_bytes(random_spec(32)))
    assert classify(client, "t", "x").status_code == 200
    assert client.delete("/prompts/t").status_code == 204
    assert_error(classify(client, "t", "x"), 404, "TaskNotFound")
    assert_error(client.get("/prompts/t"), 404, "TaskNotFound")
    assert_error(client.delete("/prompts/t"), 404, "TaskNotFound")
    assert [t["task"] for t in client.get("/prompts").json()["tasks"]] == ["other"]
    assert classify(client, "other", "x").status_code == 200
    assert upload(client, "t", prompt_bytes(random_spec(32))).json()["version"] == 1


def test_a_restarted_server_serves_every_uploaded_task_identically(make_client: MakeClient) -> None:
    first = make_client()
    for seed, task in enumerate(["a", "b", "c"]):
        pooling = ("mean", "cls", "first")[seed]
        upload(first, task, prompt_bytes(random_spec(32, seed=seed, pooling=pooling)))
    upload(first, "a", prompt_bytes(random_spec(32, seed=9)))
    first.post("/prompts/a/activate", json={"version": 1})
    before = {task: classify(first, task, TEXTS, return_all_scores=True).json() for task in "abc"}
    listing = first.get("/prompts").json()

    second = make_client()  # same prompts_dir, a new app: as after a restart

    assert second.get("/prompts").json() == listing
    for task in "abc":
        assert classify(second, task, TEXTS, return_all_scores=True).json() == before[task]
    assert classify(second, "a", TEXTS, version=2).json()["version"] == 2
