"""/metrics after real traffic: what an operator's dashboard reads, all under promptserve_."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.gated_engine import Gate, full_queue
from tests.helpers import MakeClient, classify, prompt_bytes, random_spec, scrape, upload


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_traffic(client: TestClient) -> None:
    upload(client, "a", prompt_bytes(random_spec(32, seed=1)))
    upload(client, "b", prompt_bytes(random_spec(32, seed=2)))
    classify(client, "a", ["one", "two words"])
    classify(client, "a", ["three", "four more words"])
    classify(client, "b", "five")
    classify(client, "nope", "six")

    m = scrape(client)

    assert value(m, "promptserve_requests_total", route="/classify", status="200") == 3
    assert value(m, "promptserve_requests_total", route="/classify", status="404") == 1
    assert value(m, "promptserve_requests_total", route="/prompts/{task}", status="201") == 2
    assert value(m, "promptserve_request_latency_seconds_count", route="/classify") == 4
    assert value(m, "promptserve_queue_wait_seconds_count") == 5  # one per row
    batches = value(m, "promptserve_batch_rows_count")
    assert 3 <= batches <= 5
    assert value(m, "promptserve_batch_rows_sum") == 5
    assert value(m, "promptserve_batch_tokens_count") == batches
    assert value(m, "promptserve_batch_tokens_sum") >= 5 * (4 + 3)  # prompt + [CLS] word [SEP]
    assert value(m, "promptserve_padding_ratio_count") == batches
    assert 0 <= value(m, "promptserve_padding_ratio_sum") < batches
    assert value(m, "promptserve_forward_seconds_count") == batches
    assert value(m, "promptserve_forward_seconds_sum") > 0
    assert value(m, "promptserve_queue_depth") == 0
    assert value(m, "promptserve_registered_tasks") == 2
    assert value(m, "promptserve_resident_prompts") == 2
    assert value(m, "promptserve_resident_prompt_bytes") > 0
    assert value(m, "promptserve_prompt_cache_misses_total") == 2
    assert value(m, "promptserve_prompt_cache_hits_total") == 1
    assert value(m, "promptserve_prompt_cache_evictions_total") == 0
    assert value(m, "promptserve_task_requests_total", task="a") == 2
    assert value(m, "promptserve_task_requests_total", task="b") == 1
    info = client.get("/info").json()
    [backbone] = [labels for (name, labels), _ in m.items() if name == "promptserve_backbone_info"]
    assert dict(backbone) == {
        "backbone": info["backbone"],
        "device": "cpu",
        "precision": "fp32",
        "fingerprint": info["backbone_fingerprint"],
    }


def test_every_metric_is_prefixed_and_the_scrape_is_prometheus_text(client: TestClient) -> None:
    upload(client, "a", prompt_bytes(random_spec(32)))
    classify(client, "a", "x")
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    names = [family.name for family in text_string_to_metric_families(r.text)]
    assert names and all(name.startswith("promptserve_") for name in names)


def test_registered_tasks_gauge_follows_uploads_and_deletes(client: TestClient) -> None:
    for task in ("a", "b", "c"):
        upload(client, task, prompt_bytes(random_spec(32)))
    classify(client, "a", "x")
    client.delete("/prompts/a")
    m = scrape(client)
    assert value(m, "promptserve_registered_tasks") == 2
    assert value(m, "promptserve_resident_prompts") == 0  # the deleted task left the device cache


def test_tasks_past_the_cap_are_counted_as_other(make_client: MakeClient) -> None:
    """Guards against one label per task: thousands of tasks would swamp Prometheus."""
    client = make_client(task_metric_cap=2)
    for task in ("a", "b", "c", "d"):
        upload(client, task, prompt_bytes(random_spec(32)))
    for task in ("a", "b", "c", "d", "a", "c"):
        assert classify(client, task, "x").status_code == 200
    m = scrape(client)
    counted = {
        dict(labels)["task"]: v
        for (name, labels), v in m.items()
        if name == "promptserve_task_requests_total"
    }
    assert counted == {"a": 2, "b": 1, "_other": 3}


def test_a_zero_cap_counts_every_task_as_other(make_client: MakeClient) -> None:
    client = make_client(task_metric_cap=0)
    upload(client, "a", prompt_bytes(random_spec(32)))
    classify(client, "a", "x")
    m = scrape(client)
    assert value(m, "promptserve_task_requests_total", task="_other") == 1
    assert value(m, "promptserve_task_requests_total", task="a") == 0


def test_a_tiny_cache_evicts_yet_every_answer_stays_right(make_client: MakeClient) -> None:
    roomy = make_client()
    tasks = {
        f"task-{pooling}": random_spec(32, seed=i, pooling=pooling)
        for i, pooling in enumerate(("mean", "cls", "first"))
    }
    for task, spec in tasks.items():
        upload(roomy, task, prompt_bytes(spec))
    texts = ["a short text", "and another, a bit longer than the first"]
    expected = {task: classify(roomy, task, texts, return_all_scores=True).json() for task in tasks}

    tiny = make_client(cache_bytes=1)  # same prompts directory: room for one task at a time
    for _ in range(2):
        for task in tasks:
            assert classify(tiny, task, texts, return_all_scores=True).json() == expected[task]

    m = scrape(tiny)
    assert value(m, "promptserve_prompt_cache_misses_total") == 6
    assert value(m, "promptserve_prompt_cache_evictions_total") == 5
    assert value(m, "promptserve_resident_prompts") == 1


def test_refused_and_failed_requests_are_counted_by_route_and_status(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regressions: a body refused for its size (413) never reached the request counter; then
    it, and a refusal at the full queue's door (503), counted under route 'unmatched'."""
    gate = Gate.installed(monkeypatch)
    client = make_client(
        queue_limit=2, max_client_batch=2, model_workers=1, max_batch_size=1, max_request_bytes=1000
    )
    upload(client, "a", prompt_bytes(random_spec(32)))
    with full_queue(client, gate, "a"):
        assert classify(client, "a", "x").status_code == 503
    too_big = json.dumps({"task": "a", "inputs": ["word " * 300]}).encode()
    client.post("/classify", content=too_big, headers={"content-type": "application/json"})
    m = scrape(client)
    assert value(m, "promptserve_requests_total", route="/classify", status="503") == 1
    assert value(m, "promptserve_requests_total", route="/classify", status="413") == 1
