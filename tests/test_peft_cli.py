"""`promptserve import-peft` / `export-peft`: through the CLI, into a registry a server then serves,
and out again into an adapter that PEFT loads with the same logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.backbone import Backbone
from app.cli import main
from app.registry import Registry
from tests.helpers import MakeClient, classify, prompt_bytes, random_spec
from tests.test_peft_format import (
    TEXTS,
    load_exported,
    make_peft_model,
    peft_logits,
    save_adapter,
    served_logits,
)
from tests.test_peft_upload import zip_dir


@pytest.fixture(scope="module")
def adapter(tiny_backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    model = make_peft_model(tiny_backbone_dir, num_labels=2, prompt_len=6, seed=11)
    return model, save_adapter(model, tmp_path_factory.mktemp("adapter"))


def run(*argv: str | Path) -> int:
    return main([str(arg) for arg in argv])


def registry(prompts: Path, backbone: Backbone) -> Registry:
    loaded = Registry(prompts, backbone.identity)
    loaded.load()
    return loaded


def test_imported_adapter_is_served_with_peft_models_scores(
    make_client: MakeClient,
    tmp_path: Path,
    tiny_backbone: Backbone,
    tiny_backbone_dir: Path,
    adapter: tuple,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, path = adapter
    prompts = tmp_path / "prompts"  # where make_client's server looks
    argv = ["import-peft", path, "--task", "sentiment", "--labels", "negative", "positive"]
    assert run(*argv, "--prompts-dir", prompts, "--backbone", tiny_backbone_dir) == 0
    assert "task 'sentiment' version 1" in capsys.readouterr().out

    client = make_client()
    texts = [text for text in TEXTS if text]  # the API refuses blank texts; the engine does not
    body = classify(client, "sentiment", texts, return_all_scores=True).json()
    want = torch.softmax(peft_logits(model, tiny_backbone, texts), dim=-1)
    got = torch.tensor(
        [[p["scores"]["negative"], p["scores"]["positive"]] for p in body["predictions"]]
    )
    assert (got - want).abs().max() <= 1e-5


def test_import_takes_a_zip_of_the_adapter_too(
    tmp_path: Path, tiny_backbone: Backbone, tiny_backbone_dir: Path, adapter: tuple
) -> None:
    archive = tmp_path / "adapter.zip"
    archive.write_bytes(zip_dir(adapter[1]))
    argv = ["import-peft", archive, "--task", "t", "--labels", "no", "yes", "--description", "z"]
    assert run(*argv, "--prompts-dir", tmp_path / "p", "--backbone", tiny_backbone_dir) == 0
    info = registry(tmp_path / "p", tiny_backbone).resolve("t")
    assert (info.labels, info.pooling, info.prompt_len, info.description) == (
        ("no", "yes"),
        "first",
        6,
        "z",
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        pytest.param([], "no label names", id="no-labels"),
        pytest.param(["--labels", "a", "b", "c"], "3 labels given but the head has 2", id="count"),
        pytest.param(["--labels", "a", "b", "--task", "Bad/Id"], "invalid task id", id="task-id"),
    ],
)
def test_import_refusals_exit_1_saying_why_and_store_nothing(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    adapter: tuple,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    says: str,
) -> None:
    argv = ["import-peft", adapter[1], "--task", "t", *extra, "--prompts-dir", tmp_path / "p"]
    assert run(*argv, "--backbone", tiny_backbone_dir) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "p" / "t").exists()


def test_exported_task_loads_in_peft_with_equal_logits(
    tmp_path: Path, tiny_backbone: Backbone, tiny_backbone_dir: Path
) -> None:
    prompts = tmp_path / "prompts"
    first, second = (random_spec(32, 5, 3, "first", seed=s) for s in (21, 22))
    for spec in (first, second):
        registry(prompts, tiny_backbone).add_version("topic", prompt_bytes(spec))
    argv = ["export-peft", "--task", "topic", "--prompts-dir", prompts]
    assert run(*argv, "--out", tmp_path / "active") == 0
    assert run(*argv, "--out", tmp_path / "v1", "--version", "1") == 0
    for spec, out in ((second, "active"), (first, "v1")):
        model = load_exported(tiny_backbone_dir, tmp_path / out, num_labels=3)
        want = peft_logits(model, tiny_backbone, TEXTS)
        assert (served_logits(tiny_backbone, spec, TEXTS) - want).abs().max() <= 1e-4, out


def test_export_never_overwrites_unless_told(
    tmp_path: Path, tiny_backbone: Backbone, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts"
    registry(prompts, tiny_backbone).add_version(
        "t", prompt_bytes(random_spec(32, pooling="first"))
    )
    argv = ["export-peft", "--task", "t", "--prompts-dir", prompts, "--out", tmp_path / "out"]
    assert run(*argv) == 0
    assert run(*argv) == 2
    assert "pass --force to overwrite" in capsys.readouterr().err
    assert run(*argv, "--force") == 0


@pytest.mark.parametrize(
    ("pooling", "task", "version", "says"),
    [
        pytest.param("mean", "t", "1", "pools 'mean', which PEFT cannot express", id="mean"),
        pytest.param("cls", "t", "1", "pools 'cls', which PEFT cannot express", id="cls"),
        pytest.param("first", "other", "1", "task 'other' not found", id="no-task"),
        pytest.param("first", "t", "9", "has no version 9", id="no-version"),
    ],
)
def test_export_refusals_exit_1_saying_why(
    tmp_path: Path,
    tiny_backbone: Backbone,
    capsys: pytest.CaptureFixture[str],
    pooling: str,
    task: str,
    version: str,
    says: str,
) -> None:
    prompts = tmp_path / "prompts"
    registry(prompts, tiny_backbone).add_version(
        "t", prompt_bytes(random_spec(32, pooling=pooling))
    )
    argv = ["export-peft", "--task", task, "--version", version, "--prompts-dir", prompts]
    assert run(*argv, "--out", tmp_path / "out") == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
