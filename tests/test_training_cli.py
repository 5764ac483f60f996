"""`promptserve train` / `promptserve eval` end to end, and the data errors they report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app import prompt_file
from app.backbone import Backbone
from app.cli import main
from app.registry import Registry
from app.training import data
from tests.helpers import random_spec
from tests.test_training import synthetic


def write_jsonl(path: Path, dataset: data.Dataset) -> Path:
    lines = [
        json.dumps({"text": t, "label": y})
        for t, y in zip(dataset.texts, dataset.labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_writes_a_file_and_a_registry_version_that_eval_scores(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    capsys: pytest.CaptureFixture[str],
) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", synthetic(256, seed=1))
    eval_file = write_jsonl(tmp_path / "eval.jsonl", synthetic(64, seed=2))
    out, prompts = tmp_path / "task.safetensors", tmp_path / "prompts"
    common = ["--backbone", str(tiny_backbone_dir), "--device", "cpu"]
    code = main(
        [
            "train",
            "--task",
            "mood",
            "--train",
            str(train_file),
            "--eval",
            str(eval_file),
            "--epochs",
            "2",
            "--prompt-len",
            "4",
            "--precision",
            "fp32",
            "--seed",
            "3",
            "--out",
            str(out),
            "--prompts-dir",
            str(prompts),
            "--no-progress",
            *common,
        ]
    )
    assert code == 0
    spec, _ = prompt_file.decode(out.read_bytes(), tiny_backbone.identity)
    assert spec.labels == ("negative", "positive") and spec.prompt_len == 4
    training, scored = spec.metrics["training"], spec.metrics["eval"]
    assert training["config"]["seed"] == 3
    assert training["train_sha256"] == data.sha256(train_file)
    assert "promptserve train --task mood" in training["command"]
    assert scored["sha256"] == data.sha256(eval_file) and scored["examples"] == 64

    def evaluate(*flags: str) -> int:
        scoring = ["eval", "--task", "mood", "--data", str(eval_file)]
        return main([*scoring, "--prompts-dir", str(prompts), *flags, *common])

    capsys.readouterr()
    assert evaluate("--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1
    assert report["accuracy"] == pytest.approx(scored["accuracy"], abs=1e-4)
    assert sum(map(sum, report["confusion"])) == 64

    assert evaluate() == 0
    assert "macro-F1" in capsys.readouterr().out


def test_train_needs_somewhere_to_put_the_result(tmp_path: Path) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", synthetic(8, seed=1))
    assert main(["train", "--task", "x", "--train", str(train_file)]) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "no examples"),
        ("nolabel.jsonl", '{"text": "hi"}\n', "missing field(s) ['label']"),
        ("broken.jsonl", '{"text": "hi", "label": \n', "not valid JSON"),
        ("cols.csv", "sentence,label\nhi,a\n", "missing column(s) ['text']"),
        ("blank.csv", "text,label\n ,a\n", "'text' must be a non-empty string"),
    ],
)
def test_bad_data_files_are_refused_with_a_message(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(data.DataError, match=None) as error:
        data.load(path)
    assert message in str(error.value)


def test_csv_and_single_label_and_unknown_eval_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"hello, world",a\nbye,b\n')
    dataset = data.load(path)
    assert dataset.texts == ["hello, world", "bye"] and data.check_training_labels(dataset) == (
        "a",
        "b",
    )
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "x", "label": "a"}\n{"text": "y", "label": "a"}\n')
    with pytest.raises(data.DataError, match="need at least two"):
        data.check_training_labels(data.load(one))
    other = tmp_path / "other.jsonl"
    other.write_text('{"text": "x", "label": "c"}\n')
    with pytest.raises(data.DataError, match=r"\['c'\] are not among"):
        data.check_known_labels(data.load(other), ("a", "b"))


def test_the_cli_reports_bad_data_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text('{"text": "x", "label": "a"}\n')
    assert main(["train", "--task", "x", "--train", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "need at least two" in capsys.readouterr().err


def test_train_can_start_from_a_trained_prompt_and_refuses_bad_ones(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    capsys: pytest.CaptureFixture[str],
) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", synthetic(64, seed=1))
    common = ["--train", str(train_file), "--epochs", "1", "--precision", "fp32", "--no-progress"]
    common += ["--backbone", str(tiny_backbone_dir), "--device", "cpu"]
    source = tmp_path / "source.safetensors"
    assert main(["train", "--task", "a", "--prompt-len", "4", "--out", str(source), *common]) == 0

    def train_from(*flags: str) -> int:
        out = tmp_path / "b.safetensors"
        return main(["train", "--task", "b", "--out", str(out), *flags, *common])

    # With both learning rates at zero the prompt stays where it started: the source's.
    frozen = ["--prompt-lr", "0", "--head-lr", "0", "--prompt-len", "4"]
    assert train_from("--init", "prompt", "--init-prompt", str(source), *frozen) == 0
    started, _ = prompt_file.decode(source.read_bytes(), tiny_backbone.identity)
    result = (tmp_path / "b.safetensors").read_bytes()
    trained, _ = prompt_file.decode(result, tiny_backbone.identity)
    assert torch.equal(trained.prompt, started.prompt)
    training = trained.metrics["training"]
    assert training["config"]["init_prompt"] == str(source)
    assert training["init_prompt_sha256"] == data.sha256(source)

    capsys.readouterr()
    assert train_from("--init", "prompt", "--init-prompt", str(source), "--prompt-len", "5") == 2
    assert "the init prompt has 4 vectors" in capsys.readouterr().err
    assert train_from("--init-prompt", str(source)) == 2
    assert "--init-prompt needs --init prompt" in capsys.readouterr().err
    assert train_from("--init", "prompt") == 2
    assert "--init prompt needs --init-prompt FILE" in capsys.readouterr().err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a prompt file")
    assert train_from("--init", "prompt", "--init-prompt", str(junk)) == 2
    assert f"--init-prompt {junk}:" in capsys.readouterr().err
    assert train_from("--init", "prompt", "--init-prompt", str(tmp_path / "missing")) == 2
    assert "No such file" in capsys.readouterr().err


def registry_named_by_env(
    tmp_path: Path, backbone_dir: Path, backbone: Backbone, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    """A registry holding task "mood" v1, named only by PROMPTSERVE_PROMPTS_DIR (and the backbone
    only by PROMPTSERVE_BACKBONE), with an empty directory as cwd."""
    registry = Registry(tmp_path / "registry", backbone.identity)
    registry.load()
    spec = replace(random_spec(backbone.hidden_size, num_labels=2), labels=("negative", "positive"))
    registry.add_version("mood", prompt_file.encode(spec, backbone.identity))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("PROMPTSERVE_PROMPTS_DIR", str(registry.root))
    monkeypatch.setenv("PROMPTSERVE_BACKBONE", str(backbone_dir))
    return registry


def test_eval_and_refit_read_the_registry_and_backbone_the_environment_names(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Audit 3 finding 13: with PROMPTSERVE_PROMPTS_DIR set, as `serve` and `export-peft` honour,
    `eval` said "task not found" and left an empty ./prompts behind."""
    registry = registry_named_by_env(tmp_path, tiny_backbone_dir, tiny_backbone, monkeypatch)
    rows = write_jsonl(tmp_path / "rows.jsonl", synthetic(60, seed=4))
    assert main(["eval", "--task", "mood", "--data", str(rows), "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    refit = ["refit-head", "--task", "mood", "--data", str(rows), "--folds", "2", "--register"]
    assert main([*refit, "--device", "cpu"]) == 0
    registry.load()
    assert registry.resolve("mood").version == 2
    assert not (tmp_path / "cwd" / "prompts").exists()


def test_train_takes_the_backbone_from_the_environment_but_registers_only_when_told(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """train's --prompts-dir is a destination: PROMPTSERVE_PROMPTS_DIR must not turn it on."""
    registry = registry_named_by_env(tmp_path, tiny_backbone_dir, tiny_backbone, monkeypatch)
    rows = write_jsonl(tmp_path / "rows.jsonl", synthetic(60, seed=4))
    train = ["train", "--task", "new", "--train", str(rows), "--epochs", "1", "--no-progress"]
    train += ["--prompt-len", "2", "--precision", "fp32", "--device", "cpu"]
    assert main(train) == 2
    assert "say where the result goes" in capsys.readouterr().err
    out = tmp_path / "new.safetensors"
    assert main([*train, "--out", str(out)]) == 0
    prompt_file.decode(out.read_bytes(), tiny_backbone.identity)  # refused if another backbone's
    registry.load()
    assert registry.task_ids() == ["mood"]
