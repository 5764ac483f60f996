"""Semantics that API audit 5 (2026-11-27) found wrong: blank texts, per-task counts of failed
requests, trailing slashes, HEAD probes, absurd version numbers, metrics and OpenAPI that said
more than the server does."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import assert_error, classify, prompt_bytes, random_spec, scrape, upload


@pytest.fixture
def served(client: TestClient) -> TestClient:
    assert upload(client, "t", prompt_bytes(random_spec(32))).status_code == 201
    return client


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u200b", "\ufeff"])
def test_an_empty_or_blank_text_is_refused_by_position(served: TestClient, blank: str) -> None:
    """They were all classified from the prompt alone: one confident label for every blank."""
    error = assert_error(classify(served, "t", ["fine", blank, "also fine", blank]), 422)
    assert error["message"].startswith("inputs[1, 3]: nothing to classify"), error
    assert_error(classify(served, "t", blank), 422, "InvalidRequest", "inputs[0]")
    assert classify(served, "t", ["fine", "x"]).status_code == 200


def test_failed_requests_for_a_known_task_count_in_its_series(served: TestClient) -> None:
    """Only answered requests were counted: a task's 404s (bad version), 422s, 504s were not."""
    assert classify(served, "t", "ok").status_code == 200
    assert classify(served, "t", "ok", version=9).status_code == 404
    assert classify(served, "t", "").status_code == 422
    assert classify(served, "unknown-task", "ok").status_code == 404
    samples = scrape(served)
    assert samples[("promptserve_task_requests_total", (("task", "t"),))] == 3
    tasks = {dict(labels).get("task") for name, labels in samples if "task_requests" in name}
    assert "unknown-task" not in tasks, "unknown ids must not take labels under the cap"


def test_a_trailing_slash_is_a_404_not_a_redirect(served: TestClient) -> None:
    """It was a 307 whose Location was built from the request's Host header."""
    headers = {"Host": "evil.example"}
    response = served.post("/classify/", json={"task": "t", "inputs": "x"}, headers=headers)
    assert "location" not in response.headers
    assert_error(response, 404, "NotFound")
    assert_error(served.get("/prompts/", headers=headers, follow_redirects=False), 404)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_head(served: TestClient, path: str) -> None:
    response = served.head(path)
    assert response.status_code == 200 and response.content == b""


def test_absurd_version_numbers_are_422_not_404(served: TestClient) -> None:
    """version 1e300 was a 404 whose message quoted a 300-digit number."""
    assert_error(classify(served, "t", "x", version=1e300), 422, "InvalidRequest", "version")
    activate = served.post("/prompts/t/activate", json={"version": 2**40})
    assert_error(activate, 422, "InvalidRequest", "version")
    assert_error(served.delete("/prompts/t/versions/" + "9" * 300), 422, "InvalidRequest")
    assert classify(served, "t", "x", version=2**31 - 1).status_code == 404  # in range: unknown


def test_metrics_carry_no_created_series(served: TestClient) -> None:
    classify(served, "t", "x")
    assert not [name for name, _ in scrape(served) if name.endswith("_created")]


def test_openapi_declares_only_errors_a_route_can_answer(served: TestClient) -> None:
    paths = served.get("/openapi.json").json()["paths"]

    def codes(path: str, method: str) -> set[str]:
        return {c for c in paths[path][method]["responses"] if c.startswith(("4", "5"))}

    assert codes("/prompts", "get") == {"422", "503"}
    assert codes("/prompts/{task}", "get") == {"404", "422", "503"}
    assert {"401", "413"} <= codes("/prompts/{task}", "put")
    assert codes("/classify", "post") >= {"401", "404", "408", "413", "422", "503", "504"}
    assert codes("/healthz", "get") == set()
    body = paths["/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "max_client_batch" in body["properties"]["inputs"]["description"]


def test_blank_label_names_are_refused(client: TestClient) -> None:
    """CLI audit 5: `import-peft --labels "  " x` stored a label no data file can ever match
    (the training loader strips labels). Uploads and imports share the check."""
    response = upload(client, "t", prompt_bytes(random_spec(32)), labels='["  ", "x", "y"]')
    assert_error(response, 422, "InvalidPrompt", "not blank")
    assert client.get("/prompts/t").status_code == 404
