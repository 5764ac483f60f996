"""The tasks shipped in prompts/: they load for the default backbone, carry how they were made,
and classify; on the real data (skipped when ../shared/data is absent) they score as recorded."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from types import SimpleNamespace

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
CHOSEN = json.loads((ROOT / "recipes" / "chosen.json").read_text())  # what ships, how it scored
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
        if "eval" in spec.metrics:  # trained with a validation split (without: on every row)
            assert 0 < spec.metrics["eval"]["accuracy"] <= 1


def test_the_active_versions_are_the_ones_recorded_as_shipped(registry: Registry) -> None:
    for task in SHIPPED:
        assert registry.resolve(task).version == CHOSEN[task]["shipped"]["version"], task


def test_the_reproduce_script_trains_what_ships(registry: Registry) -> None:
    """recipes/make_tasks.py builds, for each task, the training command its shipped file
    records: the same options, and the validation split only where the file had one."""
    from recipes.make_tasks import final_command
    from recipes.sweep import job_commands

    paths = {name: Path(f"{name}.jsonl") for name in ("train", "val", "test")}
    for task, chosen in CHOSEN.items():
        spec = registry.read_spec(task, chosen["shipped"]["version"])
        recorded = _options(shlex.split(spec.metrics["training"]["command"])[2:])
        options = SimpleNamespace(epochs_scale=chosen["epochs_scale"], device="auto")
        built = job_commands(task, chosen["config"], paths, Path("work"), options)[0]
        if "final" in chosen:
            built = final_command(built, Path("every-row.jsonl"), chosen["final"])
        assert _options(built[4:]) == recorded, task


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_the_reproduce_script_cuts_the_validation_splits_the_files_were_trained_on(
    registry: Registry, tmp_path: Path
) -> None:
    """A file trained on a validation split records its training file's SHA-256; the split
    make_tasks.py cuts (by text, or by row where chosen.json says so) must have the same bytes."""
    from recipes.sweep import prepare

    for task, chosen in CHOSEN.items():
        spec = registry.read_spec(task, chosen["shipped"]["version"])
        if "eval" not in spec.metrics:  # trained on every row: no split
            continue
        by_row = chosen.get("split") == "rows"
        paths = prepare(DATA, tmp_path, task, limit=None, by_row=by_row)
        digest = hashlib.sha256(paths["train"].read_bytes()).hexdigest()
        assert digest == spec.metrics["training"]["train_sha256"], task


def _options(argv: list[str]) -> dict[str, str]:
    """Flags and values of a train command, without the paths and run-only flags."""
    flags = {}
    for i, arg in enumerate(argv):
        if arg.startswith("--"):
            value = argv[i + 1] if i + 1 < len(argv) else ""
            flags[arg] = "" if value.startswith("--") else value
    for run_only in ("--train", "--eval", "--out", "--device", "--no-progress"):
        flags.pop(run_only, None)
    return {**flags, "validated": str("--eval" in argv)}


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
    test_accuracy = CHOSEN[task]["shipped"]["test_accuracy"]
    # 150 rows, CPU vs GPU bf16: a loose bar that still catches a broken task or engine.
    assert accuracy >= test_accuracy - 0.08, (task, accuracy, test_accuracy)
