"""The tasks shipped in prompts/: they load for the default backbone, carry how they were made,
and classify; on the real data (skipped when ../shared/data is absent) they score as recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.backbone import Backbone, load_backbone
from app.engine import Engine
from app.registry import Registry
from app.settings import DEFAULT_BACKBONE
from app.training import data
from app.training.evaluate import predict_local

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "prompts"
DATA = ROOT.parent / "shared" / "data"
# task -> (data set, official held-out split, number of labels)
SHIPPED = {
    "sentiment": ("sst2", "dev", 2),
    "topic": ("ag_news", "test", 4),
    "question-type": ("trec", "test", 6),
    "spam": ("sms_spam", "test", 2),
    "intent": ("banking77", "test", 77),
}
OBVIOUS = {
    "sentiment": [
        ("a moving , beautifully acted and wonderful film", "positive"),
        ("a dull , tedious and boring mess", "negative"),
    ],
    "topic": [
        ("The striker scored twice as the team won the league final", "Sports"),
        ("Shares fell as the central bank raised interest rates", "Business"),
    ],
    "question-type": [
        ("Who wrote Hamlet ?", "human"),
        ("How many feet are in a mile ?", "numeric"),
    ],
    "spam": [
        ("WINNER!! You have won a 1000 cash prize. Call 09061701461 now to claim", "spam"),
        ("Are we still meeting for lunch tomorrow?", "ham"),
    ],
    "intent": [("My card still hasn't arrived, when will it be delivered?", "card_arrival")],
}


@pytest.fixture(scope="module")
def backbone() -> Backbone:
    return load_backbone(DEFAULT_BACKBONE, device="cpu")


@pytest.fixture(scope="module")
def registry(backbone: Backbone) -> Registry:
    registry = Registry(PROMPTS, backbone.identity)
    registry.load()  # refuses any file made for another backbone
    return registry


def test_every_shipped_task_loads_with_its_provenance(registry: Registry) -> None:
    assert set(SHIPPED) <= set(registry.task_ids())
    for task, (_, _, num_labels) in SHIPPED.items():
        spec = registry.read_spec(task, registry.resolve(task).version)
        assert len(spec.labels) == num_labels
        training = spec.metrics["training"]
        assert training["command"].startswith(f"promptserve train --task {task} ")
        assert len(training["train_sha256"]) == 64 and training["config"]["seed"] == 0
        assert 0 < spec.metrics["eval"]["accuracy"] <= 1


@pytest.mark.parametrize("task", sorted(OBVIOUS))
def test_shipped_tasks_get_obvious_inputs_right(
    task: str, registry: Registry, backbone: Backbone
) -> None:
    spec = registry.read_spec(task, registry.resolve(task).version)
    texts, expected = zip(*OBVIOUS[task], strict=True)
    assert predict_local(Engine(backbone), spec, list(texts)) == list(expected)


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("task", sorted(SHIPPED))
def test_shipped_tasks_score_as_recorded_on_held_out_rows(
    task: str, registry: Registry, backbone: Backbone
) -> None:
    dataset, split, _ = SHIPPED[task]
    held_out = data.load(DATA / dataset / f"{split}.jsonl")
    texts, labels = held_out.texts[:150], held_out.labels[:150]
    spec = registry.read_spec(task, registry.resolve(task).version)
    predicted = predict_local(Engine(backbone), spec, texts)
    accuracy = sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)
    recorded = json.loads((ROOT / "recipes" / "sweep-h100.json").read_text())
    test_accuracy = next(
        job["test_accuracy"]
        for job in recorded["jobs"]
        if job["task"] == task and job["config"] == recorded["chosen"][task]
    )
    # 150 rows, CPU vs GPU bf16: a loose bar that still catches a broken task or engine.
    assert accuracy >= test_accuracy - 0.08, (task, accuracy, test_accuracy)
