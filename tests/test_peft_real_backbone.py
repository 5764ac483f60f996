"""PEFT import/export on the real default backbone (all-MiniLM-L6-v2): PeftModel's logits, fp32."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import peft_export, peft_format
from app.backbone import Backbone, load_backbone, resolve_source
from app.settings import DEFAULT_BACKBONE
from tests.helpers import random_spec
from tests.test_peft_format import (
    TEXTS,
    TOLERANCE,
    load_exported,
    make_peft_model,
    peft_logits,
    save_adapter,
    served_logits,
    write_files,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm() -> Backbone:
    """Loaded as the server loads it on CPU (TorchScript-traced), in fp32."""
    return load_backbone(DEFAULT_BACKBONE, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    return Path(resolve_source(DEFAULT_BACKBONE))


def test_imported_adapter_gives_peft_model_logits(
    minilm: Backbone, minilm_dir: Path, tmp_path: Path
) -> None:
    model = make_peft_model(minilm_dir, num_labels=4, prompt_len=20, seed=5)
    files = peft_format.read_adapter_dir(save_adapter(model, tmp_path / "adapter"))
    spec = peft_format.task_from_adapter(files, minilm.identity, ["a", "b", "c", "d"])
    want = peft_logits(model, minilm, TEXTS)
    assert want.abs().max() > 1.0, "logits this small would not tell right from wrong"
    assert (served_logits(minilm, spec, TEXTS) - want).abs().max() <= TOLERANCE


def test_exported_task_loads_in_peft_with_equal_logits(
    minilm: Backbone, minilm_dir: Path, tmp_path: Path
) -> None:
    spec = random_spec(384, prompt_len=20, num_labels=2, pooling="first", seed=6)
    files = peft_export.adapter_from_task(spec, minilm.identity)
    model = load_exported(minilm_dir, write_files(files, tmp_path / "out"), num_labels=2)
    assert model.peft_config["default"].base_model_name_or_path == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )
    want = peft_logits(model, minilm, TEXTS)
    assert (served_logits(minilm, spec, TEXTS) - want).abs().max() <= TOLERANCE
