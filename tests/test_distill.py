"""Distillation: soft labels are read strictly, the loss is the documented mix, and they teach."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from app import prompt_file
from app.backbone import Backbone
from app.cli import main
from app.training import data
from app.training.config import TrainConfig
from app.training.distill import objective
from app.training.trainer import train
from tests.test_training import synthetic, train_scored

pytest_plugins = ["tests.test_training"]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_soft_labels_are_read_and_normalised(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"text": "x", "label": "a", "soft_label": {"a": 3, "b": 1}},
            {"text": "y", "label": "b", "soft_label": {"b": 0.5}},
        ],
    )
    dataset = data.load(path)
    assert dataset.soft_labels == [{"a": 0.75, "b": 0.25}, {"b": 1.0}]
    hard = write_jsonl(tmp_path / "h.jsonl", [{"text": "x", "label": "a"}])
    assert data.load(hard).soft_labels is None


@pytest.mark.parametrize(
    ("soft", "message"),
    [
        ([1, 0], "must be an object of label: probability"),
        ({}, "must be an object of label: probability"),
        ({"a": "high"}, "label 'a' has 'high'"),
        ({"a": -0.1, "b": 1}, "each finite and >= 0"),
        ({"a": 0, "b": 0}, "not all zero"),
    ],
)
def test_bad_soft_labels_are_refused_with_the_row(
    tmp_path: Path, soft: object, message: str
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"text": "x", "label": "a", "soft_label": soft}])
    with pytest.raises(data.DataError, match=None) as error:
        data.load(path)
    assert message in str(error.value) and "bad.jsonl:1" in str(error.value)


def test_soft_labels_go_on_every_row_or_none(tmp_path: Path) -> None:
    rows = [{"text": "x", "label": "a", "soft_label": {"a": 1}}, {"text": "y", "label": "b"}]
    with pytest.raises(data.DataError, match="example 2 has no 'soft_label'"):
        data.load(write_jsonl(tmp_path / "mixed.jsonl", rows))


def test_the_loss_is_the_documented_mix() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    soft = torch.rand(5, 3).softmax(-1)
    mix = (0.0, 0.3, 2.5)  # label smoothing, distill weight, temperature
    teacher_t = soft ** (1 / 2.5) / (soft ** (1 / 2.5)).sum(-1, keepdim=True)
    student_t = (logits / 2.5).softmax(-1)
    kl = (teacher_t * (teacher_t.log() - student_t.log())).sum(-1).mean()
    expected = 0.7 * F.cross_entropy(logits, targets) + 0.3 * 2.5**2 * kl
    assert torch.allclose(objective(logits, targets, soft, *mix), expected, atol=1e-6)
    assert torch.equal(objective(logits, targets, None, *mix), F.cross_entropy(logits, targets))


def test_soft_labels_teach_what_they_say_not_the_hard_labels(
    trainer_backbone: Backbone, tiny_backbone: Backbone
) -> None:
    """With weight 1 only the teacher counts: a teacher that says the opposite of every hard
    label trains a task that predicts the opposite; with weight 0 the soft labels are ignored."""
    train_data, eval_data = synthetic(640, seed=1), synthetic(200, seed=2)
    flip = {"positive": "negative", "negative": "positive"}
    teacher = [{flip[label]: 0.95, label: 0.05} for label in train_data.labels]
    with_teacher = replace(train_data, soft_labels=teacher)
    flipped_eval = replace(eval_data, labels=[flip[label] for label in eval_data.labels])
    config = TrainConfig(
        epochs=5,
        prompt_len=4,
        precision="fp32",
        head_init="zeros",
        prompt_lr=0.1,
        head_lr=0.1,
        distill_weight=1.0,
        distill_temperature=1.0,
    )
    result = train_scored(config, trainer_backbone, tiny_backbone, with_teacher, flipped_eval)
    assert result.best_scores is not None and result.best_scores.accuracy >= 0.8
    hard_only = replace(config, distill_weight=0.0)
    ignored = train_scored(hard_only, trainer_backbone, tiny_backbone, with_teacher, eval_data)
    assert ignored.best_scores is not None and ignored.best_scores.accuracy >= 0.8


def test_distilling_needs_soft_labels_that_name_known_labels(trainer_backbone: Backbone) -> None:
    config = TrainConfig(epochs=1, prompt_len=4, precision="fp32", distill_weight=0.5)
    with pytest.raises(data.DataError, match="distilling needs a 'soft_label' on every row"):
        train(config, trainer_backbone, synthetic(40, seed=1))
    unknown = replace(synthetic(2, seed=1), soft_labels=[{"neutral": 1.0}] * 2)
    with pytest.raises(data.DataError, match=r"label\(s\) \['neutral'\] that no example has"):
        train(config, trainer_backbone, unknown)
    for bad in ({"distill_weight": 1.5}, {"distill_temperature": 0.0}):
        with pytest.raises(ValueError, match="distill"):  # with the other options, before work
            replace(config, **bad)


def test_the_cli_distills_and_records_it(
    tmp_path: Path, tiny_backbone_dir: Path, tiny_backbone: Backbone
) -> None:
    train_data = synthetic(64, seed=1)
    other = {"positive": "negative", "negative": "positive"}
    rows = [
        {"text": text, "label": label, "soft_label": {label: 0.8, other[label]: 0.2}}
        for text, label in zip(train_data.texts, train_data.labels, strict=True)
    ]
    path = write_jsonl(tmp_path / "teacher.jsonl", rows)
    out = tmp_path / "t.safetensors"
    args = ["train", "--task", "t", "--train", str(path), "--out", str(out), "--epochs", "1"]
    args += ["--prompt-len", "4", "--backbone", str(tiny_backbone_dir), "--no-progress"]
    assert main([*args, "--distill-weight", "0.5", "--distill-temperature", "3"]) == 0
    trained, _ = prompt_file.decode(out.read_bytes(), tiny_backbone.identity)
    training = trained.metrics["training"]
    assert training["config"]["distill_weight"] == 0.5
    assert training["config"]["distill_temperature"] == 3.0
    assert main([*args, "--distill-weight", "2"]) == 2


def test_the_teacher_script_writes_soft_labels_the_trainer_reads(
    tmp_path: Path, tiny_backbone_dir: Path
) -> None:
    """recipes/teacher.py fine-tunes a (tiny) backbone and writes every row back with its
    probabilities; the file loads as distillation data, hard labels and texts unchanged."""
    source = synthetic(48, seed=3)
    rows = [{"text": t, "label": y} for t, y in zip(source.texts, source.labels, strict=True)]
    train_file = write_jsonl(tmp_path / "train.jsonl", rows)
    out = tmp_path / "teacher.jsonl"
    script = Path(__file__).resolve().parent.parent / "recipes" / "teacher.py"
    command = [sys.executable, str(script), str(train_file), str(out), "--epochs", "1"]
    command += ["--backbone", str(tiny_backbone_dir), "--device", "cpu", "--eval", str(train_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "48 rows" in done.stdout and "teacher accuracy on" in done.stdout
    loaded = data.load(out)
    assert loaded.texts == source.texts and loaded.labels == source.labels
    assert loaded.soft_labels is not None and len(loaded.soft_labels) == 48
    for soft in loaded.soft_labels:
        assert set(soft) == {"negative", "positive"}
        assert abs(sum(soft.values()) - 1) < 1e-6
    assert len({round(soft["positive"], 6) for soft in loaded.soft_labels}) > 1  # not constant

    # Cross-fitted: each half's soft labels come from a teacher trained on the other half.
    command[command.index("--eval") : command.index("--eval") + 2] = ["--folds", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "fold 0 epoch 1" in done.stdout and "fold 1 epoch 1" in done.stdout
    cross_fitted = data.load(out)
    assert cross_fitted.labels == source.labels and cross_fitted.soft_labels is not None
    assert cross_fitted.soft_labels != loaded.soft_labels
    refused = subprocess.run([*command, "--eval", str(train_file)], capture_output=True, text=True)
    assert refused.returncode == 2 and "--eval needs --folds 1" in refused.stderr
