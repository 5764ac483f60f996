"""POST /classify over the real engine: answers, their order, scores, pinning and hot swaps."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.backbone import Backbone
from app.task import POOLINGS, TaskSpec
from tests.helpers import MakeClient, classify, prompt_bytes, random_spec, upload

TEXTS = ["what a lovely film", "dull and far too long", "ok", "the plot made no sense at all"]


@pytest.fixture
def sentiment(client):  # type: ignore[no-untyped-def]
    spec = random_spec(32, num_labels=3, seed=1)
    assert upload(client, "sentiment", prompt_bytes(spec)).status_code == 201
    return spec


def test_a_single_text_gets_one_prediction(client: TestClient, sentiment: TaskSpec) -> None:
    r = classify(client, "sentiment", "what a lovely film")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["task"], body["version"], body["truncated"]) == ("sentiment", 1, [False])
    [prediction] = body["predictions"]
    assert prediction["label"] in sentiment.labels
    assert 1 / 3 <= prediction["score"] <= 1
    assert "scores" not in prediction


def test_a_batch_answers_each_input_in_order_as_if_sent_alone(
    client: TestClient, sentiment: TaskSpec
) -> None:
    together = classify(client, "sentiment", TEXTS, return_all_scores=True).json()["predictions"]
    alone = [
        classify(client, "sentiment", [text], return_all_scores=True).json()["predictions"][0]
        for text in TEXTS
    ]
    assert len(together) == len(TEXTS)
    for batched, single in zip(together, alone, strict=True):
        assert batched["label"] == single["label"]
        for label in sentiment.labels:
            assert batched["scores"][label] == pytest.approx(single["scores"][label], abs=1e-4)


def test_all_scores_are_a_distribution_whose_best_is_the_label(
    client: TestClient, sentiment: TaskSpec
) -> None:
    body = classify(client, "sentiment", TEXTS, return_all_scores=True).json()
    for prediction in body["predictions"]:
        scores = prediction["scores"]
        assert set(scores) == set(sentiment.labels)
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction["label"] == max(scores, key=scores.get)
        assert prediction["score"] == pytest.approx(scores[prediction["label"]])


def test_different_texts_get_different_scores(client: TestClient, sentiment: TaskSpec) -> None:
    """Guards an engine that ignores the text (e.g. pools only the prompt)."""
    body = classify(client, "sentiment", TEXTS, return_all_scores=True).json()
    distinct = {tuple(round(s, 5) for s in p["scores"].values()) for p in body["predictions"]}
    assert len(distinct) == len(TEXTS)


def test_texts_over_max_text_chars_are_cut_and_flagged(make_client: MakeClient) -> None:
    client = make_client(max_text_chars=50)
    upload(client, "t", prompt_bytes(random_spec(32)))
    body = classify(client, "t", ["short", "a" * 50, "a" * 51]).json()
    assert body["truncated"] == [False, False, True]


def test_texts_longer_than_the_backbone_are_cut_and_flagged(make_client: MakeClient) -> None:
    client = make_client()
    upload(client, "t", prompt_bytes(random_spec(32, prompt_len=8)))
    body = classify(client, "t", ["word " * 300, "short"]).json()
    assert body["truncated"] == [True, False]
    assert len(body["predictions"]) == 2


@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_pooling_rule_is_served(client: TestClient, pooling: str) -> None:
    upload(client, "t", prompt_bytes(random_spec(32, pooling=pooling)))
    r = classify(client, "t", TEXTS)
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == len(TEXTS)


def test_tasks_with_different_label_sets_answer_with_their_own_labels(client: TestClient) -> None:
    binary_spec = random_spec(32, num_labels=2, seed=1)
    upload(client, "binary", prompt_bytes(binary_spec), labels='["neg", "pos"]')
    upload(client, "topics", prompt_bytes(random_spec(32, num_labels=5, seed=2)))
    binary = classify(client, "binary", TEXTS, return_all_scores=True).json()["predictions"]
    topics = classify(client, "topics", TEXTS, return_all_scores=True).json()["predictions"]
    assert all(set(p["scores"]) == {"neg", "pos"} for p in binary)
    assert all(len(p["scores"]) == 5 for p in topics)


def test_an_upload_is_served_by_the_very_next_request(client: TestClient) -> None:
    """Hot swap: v2 has another head, so the next answer comes from v2 and differs."""
    upload(client, "t", prompt_bytes(random_spec(32, seed=1)))
    before = classify(client, "t", TEXTS, return_all_scores=True).json()
    assert upload(client, "t", prompt_bytes(random_spec(32, seed=2))).status_code == 201
    after = classify(client, "t", TEXTS, return_all_scores=True).json()
    assert (before["version"], after["version"]) == (1, 2)
    assert after["predictions"] != before["predictions"]


def test_a_request_may_pin_a_version(client: TestClient) -> None:
    upload(client, "t", prompt_bytes(random_spec(32, seed=1)))
    v1 = classify(client, "t", TEXTS, return_all_scores=True).json()
    upload(client, "t", prompt_bytes(random_spec(32, seed=2)))
    pinned = classify(client, "t", TEXTS, version=1, return_all_scores=True).json()
    assert pinned == v1
    assert classify(client, "t", TEXTS, version=2).json()["version"] == 2


def test_exactly_max_client_batch_inputs_are_accepted(make_client: MakeClient) -> None:
    client = make_client(max_client_batch=5)
    upload(client, "t", prompt_bytes(random_spec(32)))
    r = classify(client, "t", [f"text {i}" for i in range(5)])
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 5


def test_unicode_texts_are_classified(client: TestClient, sentiment: TaskSpec) -> None:
    """Blank ones are refused: tests/test_api_semantics.py."""
    r = classify(client, "sentiment", ["日本語のテキスト", "emoji 🎬", "\x00\n\tnul", "ﬁ ①"])
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 4


def test_the_server_reports_liveness_readiness_and_what_it_runs(
    client: TestClient, tiny_backbone: Backbone
) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready"}
    info = client.get("/info").json()
    assert info["backbone_fingerprint"] == tiny_backbone.identity.fingerprint
    assert (info["hidden_size"], info["max_positions"], info["device"], info["precision"]) == (
        32,
        128,
        "cpu",
        "fp32",
    )
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/classify", "/prompts", "/prompts/{task}", "/prompts/{task}/activate"} <= set(paths)
