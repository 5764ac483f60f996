"""Head refit: k-fold choice of the L2 penalty, the refitted task served as fitted, and
`promptserve refit-head` end to end with the errors it reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app import prompt_file
from app.backbone import Backbone
from app.cli import main
from app.engine import Engine
from app.registry import Registry
from app.training import data
from app.training.evaluate import predict_local, served_features
from app.training.logreg import cross_validate_l2, fit
from app.training.refit import refit_head
from tests.helpers import random_spec
from tests.test_training import synthetic
from tests.test_training_cli import write_jsonl


def blobs(rows: int, seed: int, spread: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian clusters in 8 dimensions; `spread` sets how much they overlap."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 8, generator=g) * 3
    labels = torch.randint(0, 3, (rows,), generator=g)
    return centres[labels] + spread * torch.randn(rows, 8, generator=g), labels


def test_folded_head_gives_the_standardised_models_logits() -> None:
    features, labels = blobs(200, seed=0, spread=1.0)
    features = features * torch.linspace(0.1, 50, 8) + 7  # scales and offsets to fold away
    model = fit(features, labels, 3, l2=1e-2)
    weight, bias = model.folded()
    torch.testing.assert_close(features @ weight.T + bias, model.logits(features))


def test_cross_validation_scores_every_row_once_and_prefers_the_stronger_tie() -> None:
    features, labels = blobs(300, seed=1, spread=0.3)  # separable: every L2 scores 1.0 ...
    l2, scores = cross_validate_l2(features, labels, 3, 5, 0, list(range(300)), [1e-4, 1e-2])
    assert scores == {"1e-02": 1.0, "1e-04": 1.0}
    assert l2 == 1e-2  # ... and the stronger penalty wins the tie
    noisy, noisy_labels = blobs(300, seed=2, spread=4.0)
    _, noisy_scores = cross_validate_l2(noisy, noisy_labels, 3, 4, 0, list(range(300)), [10.0])
    # each row counted once: accuracy is a multiple of 1/rows, well above chance, below perfect
    assert round(noisy_scores["1e+01"] * 300) == pytest.approx(noisy_scores["1e+01"] * 300)
    assert 0.4 < noisy_scores["1e+01"] < 1.0
    with pytest.raises(ValueError, match="folds"):
        cross_validate_l2(features, labels, 3, 1, 0, list(range(300)))


def test_refit_keeps_the_prompt_and_serves_the_head_it_fitted(tiny_backbone: Backbone) -> None:
    engine = Engine(tiny_backbone)
    spec = random_spec(tiny_backbone.hidden_size, prompt_len=4, num_labels=2)
    spec = replace(spec, labels=("negative", "positive"), head_weight=spec.head_weight * 0)
    train = synthetic(240, seed=5)

    refit = refit_head(engine, spec, train, folds=4, seed=0)

    assert torch.equal(refit.spec.prompt, spec.prompt)
    assert refit.spec.labels == spec.labels and refit.spec.pooling == spec.pooling
    assert refit.examples == 240 and f"{refit.l2:.0e}" in refit.cv_scores
    assert refit.cv_accuracy == refit.cv_scores[f"{refit.l2:.0e}"] > 0.8  # an easy task
    # what the engine serves is what was fitted: the head applied to the served features
    held_out = synthetic(80, seed=6)
    features = served_features(engine, refit.spec, held_out.texts)
    by_features = features @ refit.spec.head_weight.T + refit.spec.head_bias
    expected = [refit.spec.labels[i] for i in by_features.argmax(-1).tolist()]
    assert predict_local(engine, refit.spec, held_out.texts) == expected
    accuracy = sum(p == y for p, y in zip(expected, held_out.labels, strict=True)) / 80
    assert accuracy > 0.8


def test_refit_refuses_rows_that_do_not_fit_the_task(tiny_backbone: Backbone) -> None:
    engine = Engine(tiny_backbone)
    spec = replace(
        random_spec(tiny_backbone.hidden_size, num_labels=2), labels=("negative", "positive")
    )
    only_positive = data.Dataset(["nice", "great"], ["positive", "positive"], Path("p.jsonl"))
    with pytest.raises(data.DataError, match="no rows for label.*'negative'"):
        refit_head(engine, spec, only_positive, folds=2)
    unknown = data.Dataset(["nice", "meh"], ["positive", "neutral"], Path("u.jsonl"))
    with pytest.raises(data.DataError, match="neutral"):
        refit_head(engine, spec, unknown, folds=2)


def test_refit_head_cli_registers_a_new_active_version_with_its_record(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prompts = tmp_path / "prompts"
    registry = Registry(prompts, tiny_backbone.identity)
    registry.load()
    start = replace(
        random_spec(tiny_backbone.hidden_size, num_labels=2),
        labels=("negative", "positive"),
        metrics={"training": {"command": "promptserve train --task mood ..."}},
    )
    registry.add_version("mood", prompt_file.encode(start, tiny_backbone.identity))
    train_file = write_jsonl(tmp_path / "train.jsonl", synthetic(200, seed=7))
    eval_file = write_jsonl(tmp_path / "eval.jsonl", synthetic(60, seed=8))
    common = ["--backbone", str(tiny_backbone_dir), "--device", "cpu"]
    common += ["--prompts-dir", str(prompts)]
    refit = ["refit-head", "--task", "mood", "--data", str(train_file), "--folds", "3"]

    assert main([*refit, *common]) == 2  # nowhere to put the result
    assert "--register" in capsys.readouterr().err
    assert main([*refit, "--eval", str(eval_file), "--register", *common]) == 0

    reloaded = Registry(prompts, tiny_backbone.identity)
    reloaded.load()
    assert reloaded.resolve("mood").version == 2  # the refit is the new active version
    spec = reloaded.read_spec("mood", 2)
    assert torch.equal(spec.prompt, start.prompt)
    assert not torch.equal(spec.head_weight, start.head_weight)
    record = spec.metrics["head_refit"]
    assert record["of_version"] == 1 and record["folds"] == 3 and record["examples"] == 200
    assert record["data_sha256"] == data.sha256(train_file)
    assert record["command"].startswith("promptserve refit-head --task mood")
    assert spec.metrics["training"] == start.metrics["training"]  # the prompt's provenance stays
    assert spec.metrics["eval"]["sha256"] == data.sha256(eval_file)

    capsys.readouterr()
    scoring = ["eval", "--task", "mood", "--data", str(eval_file), "--json", *common]
    assert main(scoring) == 0
    scored = json.loads(capsys.readouterr().out)["accuracy"]
    assert scored == pytest.approx(spec.metrics["eval"]["accuracy"], abs=1e-4)


def test_refit_head_cli_reports_bad_input_without_a_traceback(
    tmp_path: Path, tiny_backbone_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "fine", "label": "positive"}\n')
    common = ["--backbone", str(tiny_backbone_dir), "--device", "cpu"]
    missing = ["--prompts-dir", str(tmp_path / "empty"), "--register"]
    assert main(["refit-head", "--task", "nope", "--data", str(rows), *missing, *common]) == 2
    assert "nope" in capsys.readouterr().err
    no_file = tmp_path / "absent.jsonl"
    assert main(["refit-head", "--task", "x", "--data", str(no_file), *missing, *common]) == 2
    assert "no such file" in capsys.readouterr().err


def test_refit_head_cli_reads_a_file_and_writes_a_file(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where the default --prompts-dir would be written
    start = replace(
        random_spec(tiny_backbone.hidden_size, num_labels=2), labels=("negative", "positive")
    )
    source, out = tmp_path / "mood.safetensors", tmp_path / "refit.safetensors"
    source.write_bytes(prompt_file.encode(start, tiny_backbone.identity))
    rows = write_jsonl(tmp_path / "rows.jsonl", synthetic(120, seed=9))
    common = ["--backbone", str(tiny_backbone_dir), "--device", "cpu"]
    refit = ["refit-head", "--task", "mood", "--file", str(source), "--data", str(rows)]
    assert main([*refit, "--folds", "2", "--out", str(out), *common]) == 0
    spec, _ = prompt_file.decode(out.read_bytes(), tiny_backbone.identity)
    assert torch.equal(spec.prompt, start.prompt) and spec.labels == start.labels
    assert spec.metrics["head_refit"]["folds"] == 2 and "eval" not in spec.metrics
    assert not (tmp_path / "prompts").exists()  # --out only: no registry read or written
