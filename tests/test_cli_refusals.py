"""refit-head, eval, import-peft and export-peft: what CLI audit 5 (2026-11-27) found each doing
with bad input: data overwritten, a whole fit lost, tracebacks, conflicting options ignored."""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from app import prompt_file
from app.backbone import Backbone
from app.cli import main
from app.registry import Registry
from tests.helpers import random_spec
from tests.test_training import synthetic
from tests.test_training_cli import write_jsonl


def unreachable() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def task_file(tmp_path: Path, tiny_backbone: Backbone) -> Path:
    spec = replace(
        random_spec(tiny_backbone.hidden_size, num_labels=2), labels=("negative", "positive")
    )
    path = tmp_path / "mood.safetensors"
    path.write_bytes(prompt_file.encode(spec, tiny_backbone.identity))
    return path


def refit(tmp_path: Path, backbone_dir: Path, task_file: Path, *extra: str) -> int:
    rows = write_jsonl(tmp_path / "rows.jsonl", synthetic(40, seed=3))
    argv = ["refit-head", "--task", "mood", "--data", str(rows), "--file", str(task_file)]
    return main([*argv, "--folds", "2", "--backbone", str(backbone_dir), "--device", "cpu", *extra])


@pytest.mark.parametrize(
    ("where", "says"),
    [
        (lambda tmp: ["--out", str(tmp / "rows.jsonl")], "is the --data file"),
        (lambda tmp: ["--out", str(tmp / "mood.safetensors")], "is the --file file"),
        (lambda tmp: ["--out", str(tmp)], "is a directory"),
        (lambda tmp: ["--upload", unreachable()], "cannot reach the server"),
    ],
)
def test_refit_head_checks_where_its_result_goes_before_fitting(
    where,  # type: ignore[no-untyped-def]
    says: str,
    tmp_path: Path,
    tiny_backbone_dir: Path,
    task_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`refit-head --out rows.jsonl` replaced the user's data with safetensors bytes, and a bad
    --upload was found only after the fit, which was then lost."""
    monkeypatch.setattr("app.training.refit.refit_head", lambda *a: pytest.fail("fitted"))
    assert refit(tmp_path, tiny_backbone_dir, task_file, *where(tmp_path)) == 2
    assert says in capsys.readouterr().err
    assert (tmp_path / "rows.jsonl").read_text().startswith('{"text"'), "the data is intact"


def eval_args(tmp_path: Path, backbone_dir: Path, *extra: str) -> list[str]:
    rows = write_jsonl(tmp_path / "rows.jsonl", synthetic(8, seed=4))
    argv = ["eval", "--task", "mood", "--data", str(rows), "--backbone", str(backbone_dir)]
    return [*argv, "--device", "cpu", *extra]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--url", "URL", "--file", "x.safetensors"], "give one"),  # --file was ignored
        (["--url", "URL", "--version", "0"], "--version must be 1 or more"),  # was: active
        (["--url", "URL"], "cannot reach the server"),  # named no URL
    ],
)
def test_eval_refuses_conflicting_or_impossible_options(
    extra: list[str],
    says: str,
    tmp_path: Path,
    tiny_backbone_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = unreachable()
    argv = eval_args(tmp_path, tiny_backbone_dir, *[url if a == "URL" else a for a in extra])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    if says == "cannot reach the server":
        assert url in err


@pytest.fixture
def registry_with_mood(tmp_path: Path, tiny_backbone: Backbone) -> Path:
    prompts = tmp_path / "prompts"
    registry = Registry(prompts, tiny_backbone.identity)
    registry.load()
    spec = replace(
        random_spec(tiny_backbone.hidden_size, num_labels=2, pooling="first"), labels=("a", "b")
    )
    registry.add_version("mood", prompt_file.encode(spec, tiny_backbone.identity))
    return prompts


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: (d / "task.json").write_text("{bad"), "task.json is damaged"),
        (lambda d: (d / "task.json").write_text('{"active": null}'), "active version is None"),
        (lambda d: (d / "v1.safetensors").write_bytes(b"\x00" * 4), "not a valid safetensors"),
    ],
)
def test_export_peft_names_a_damaged_registry_file(
    damage,  # type: ignore[no-untyped-def]
    says: str,
    tmp_path: Path,
    registry_with_mood: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each gave a traceback (JSONDecodeError, SafetensorError) or 'no version None'."""
    damage(registry_with_mood / "mood")
    argv = ["export-peft", "--task", "mood", "--out", str(tmp_path / "adapter")]
    assert main([*argv, "--prompts-dir", str(registry_with_mood)]) == 2
    assert says in capsys.readouterr().err


def test_export_peft_onto_a_file_says_so(
    tmp_path: Path, registry_with_mood: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").write_text("not a folder")
    argv = ["export-peft", "--task", "mood", "--out", str(tmp_path / "taken")]
    assert main([*argv, "--prompts-dir", str(registry_with_mood)]) == 2
    assert "is a file; give a directory" in capsys.readouterr().err


def test_import_peft_names_a_backbone_folder_that_holds_no_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder without config.json gave the tokenizer's traceback."""
    argv = ["import-peft", str(tmp_path), "--task", "q", "--backbone", str(tmp_path)]
    assert main([*argv, "--prompts-dir", str(tmp_path / "p")]) == 2
    assert "no config.json there" in capsys.readouterr().err


def test_the_recorded_init_prompt_hash_is_the_input_files(
    tmp_path: Path, tiny_backbone_dir: Path, task_file: Path, tiny_backbone: Backbone
) -> None:
    """It was read when the result was saved, so it could be another file's (the checkpoint's,
    when --out was the init prompt: now refused)."""
    rows = write_jsonl(tmp_path / "rows.jsonl", synthetic(32, seed=5))
    out = tmp_path / "out.safetensors"
    spec, _ = prompt_file.decode(task_file.read_bytes(), tiny_backbone.identity)
    argv = ["train", "--task", "mood", "--train", str(rows), "--epochs", "1", "--no-progress"]
    argv += ["--init", "prompt", "--init-prompt", str(task_file), "--out", str(out)]
    argv += ["--prompt-len", str(spec.prompt_len), "--precision", "fp32"]
    assert main([*argv, "--backbone", str(tiny_backbone_dir), "--device", "cpu"]) == 0
    _, metadata = prompt_file.decode(out.read_bytes(), tiny_backbone.identity)
    training = json.loads(metadata["metrics"])["training"]
    assert training["init_prompt_sha256"] == hashlib.sha256(task_file.read_bytes()).hexdigest()


def test_import_peft_refuses_what_an_upload_would(
    tmp_path: Path, tiny_backbone_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Code review: import-peft stored tasks without the upload's probe forward, so it kept an
    adapter (here, a prompt at 3e38) that PUT /prompts/{task} refuses as unusable."""
    import torch
    from safetensors.torch import save_file

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    config = {"peft_type": "PROMPT_TUNING", "task_type": "SEQ_CLS", "num_virtual_tokens": 4}
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "token_dim": 32}))
    tensors = {
        "prompt_embeddings": torch.full((4, 32), 3e38),
        "base_model.classifier.weight": torch.zeros(2, 32),
        "base_model.classifier.bias": torch.zeros(2),
    }
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    prompts = tmp_path / "prompts"
    argv = ["import-peft", str(adapter), "--task", "q", "--labels", "a", "b"]
    assert main([*argv, "--backbone", str(tiny_backbone_dir), "--prompts-dir", str(prompts)]) == 2
    assert "non-finite scores" in capsys.readouterr().err
    assert not (prompts / "q").exists()


def test_rows_the_server_would_refuse_are_refused_by_row_locally_too(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    task_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Re-check of audit 5: `eval --url` stopped at the server's 422 for a text with nothing to
    classify, where `eval --file` and `train` went on: --file and --url disagreed."""
    monkeypatch.setenv("PROMPTSERVE_MAX_TEXT_CHARS", "100")
    rows = tmp_path / "rows.jsonl"
    texts = ["fine film", "\u200b\u0301", "dull", " " * 200 + "cut away"]
    rows.write_text("".join(json.dumps({"text": t, "label": "positive"}) + "\n" for t in texts))
    argv = ["eval", "--task", "mood", "--data", str(rows), "--file", str(task_file)]
    assert main([*argv, "--backbone", str(tiny_backbone_dir), "--device", "cpu"]) == 2
    assert "data row(s) 2, 4 (counting from 1) have nothing to classify" in capsys.readouterr().err
