"""RoBERTa-style PEFT heads (classifier.dense -> tanh -> classifier.out_proj) in and out.

On a RoBERTa backbone PEFT's classifier reads position 0's raw hidden state through its own dense
layer, skipping the backbone's pooler: imported as a task with its own pooler. The reference is
PEFT's PeftModel itself, on a tiny random RoBERTa.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app import peft_export, peft_format, prompt_file
from app.backbone import Backbone, load_backbone
from app.errors import InvalidPrompt
from app.task import TaskSpec
from tests.helpers import random_spec
from tests.test_other_encoders import configs, save
from tests.test_peft_format import (
    TEXTS,
    TOLERANCE,
    load_exported,
    peft_logits,
    save_adapter,
    served_logits,
    write_files,
)

peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    from app.backbone import resolve_source
    from app.settings import DEFAULT_BACKBONE

    tokenizer = AutoTokenizer.from_pretrained(resolve_source(DEFAULT_BACKBONE))
    config = configs(tokenizer.vocab_size, tokenizer.pad_token_id)["roberta"]
    return save(config, tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="module")
def roberta(roberta_dir: Path) -> Backbone:
    return load_backbone(str(roberta_dir), "cpu", "fp32", trace="off")


@pytest.fixture(scope="module")
def adapter(roberta_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A PEFT prompt-tuning model on the tiny RoBERTa, its prompt and head scaled up so that a
    wrong pooling would move the logits well past the tolerance."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(7)
    base = AutoModelForSequenceClassification.from_pretrained(roberta_dir, num_labels=3)
    with torch.no_grad():
        for layer in (base.classifier.dense, base.classifier.out_proj):
            layer.weight.normal_(0, 0.5)
            layer.bias.normal_(0, 0.5)
    model = peft.get_peft_model(
        base, peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)
    )
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
    model.eval()
    return model, save_adapter(model, tmp_path_factory.mktemp("roberta-adapter"))


def imported(adapter: tuple, roberta: Backbone) -> TaskSpec:
    files = peft_format.read_adapter_dir(adapter[1])
    return peft_format.task_from_adapter(files, roberta.identity, list("abc"))


def test_a_roberta_style_head_imports_with_peft_model_logits(
    adapter: tuple, roberta: Backbone
) -> None:
    spec = imported(adapter, roberta)
    assert spec.pooling == "first" and spec.pooler_weight is not None
    want = peft_logits(adapter[0], roberta, TEXTS)
    assert want.abs().max() > 0.5, "logits this small would not tell right from wrong"
    assert (served_logits(roberta, spec, TEXTS) - want).abs().max() <= TOLERANCE


def test_the_comparison_would_catch_the_backbones_pooler(adapter: tuple, roberta: Backbone) -> None:
    """Guards the test above: the same head read through RoBERTa's own pooler is wrong."""
    spec = imported(adapter, roberta)
    without = TaskSpec(spec.prompt, spec.head_weight, spec.head_bias, spec.labels, "first")
    want = peft_logits(adapter[0], roberta, TEXTS)
    assert (served_logits(roberta, without, TEXTS) - want).abs().max() > 100 * TOLERANCE


def test_the_task_pooler_survives_the_prompt_file(adapter: tuple, roberta: Backbone) -> None:
    spec = imported(adapter, roberta)
    back, _ = prompt_file.decode(prompt_file.encode(spec, roberta.identity), roberta.identity)
    assert back.pooler_weight is not None and back.pooler_bias is not None
    assert torch.equal(back.pooler_weight, spec.pooler_weight)  # type: ignore[arg-type]
    assert torch.equal(back.pooler_bias, spec.pooler_bias)  # type: ignore[arg-type]


def test_exported_roberta_task_loads_in_peft_with_equal_logits(
    adapter: tuple, roberta: Backbone, roberta_dir: Path, tmp_path: Path
) -> None:
    spec = imported(adapter, roberta)
    files = peft_export.adapter_from_task(spec, roberta.identity)
    model = load_exported(roberta_dir, write_files(files, tmp_path / "out"), num_labels=3)
    want = peft_logits(model, roberta, TEXTS)
    assert (served_logits(roberta, spec, TEXTS) - want).abs().max() <= TOLERANCE


def test_heads_of_the_other_style_are_refused_both_ways(
    roberta: Backbone, tiny_backbone: Backbone, adapter: tuple
) -> None:
    """A RoBERTa task without its own pooler cannot be written for PEFT; a task with a pooler
    cannot be written for a BERT backbone; a BERT-style adapter does not import on RoBERTa."""
    with pytest.raises(InvalidPrompt, match="its own dense layer"):
        peft_export.adapter_from_task(random_spec(32, pooling="first"), roberta.identity)
    spec = imported(adapter, roberta)
    with pytest.raises(InvalidPrompt, match="RoBERTa-style head"):
        peft_export.adapter_from_task(spec, tiny_backbone.identity)
    bert_style = peft_export.adapter_from_task(
        random_spec(32, pooling="first"), tiny_backbone.identity
    )
    with pytest.raises(InvalidPrompt):
        peft_format.task_from_adapter(bert_style, roberta.identity, any_base_model=True)


def test_a_task_pooler_needs_pooling_first_and_its_shapes() -> None:
    spec = random_spec(32, pooling="first")
    with pytest.raises(InvalidPrompt, match="pooling must be 'first'"):
        TaskSpec(**{**spec.__dict__, "pooling": "mean", "pooler_weight": torch.zeros(32, 32),
                    "pooler_bias": torch.zeros(32)})  # fmt: skip
    with pytest.raises(InvalidPrompt, match=r"expected \[32, 32\]"):
        TaskSpec(**{**spec.__dict__, "pooler_weight": torch.zeros(32, 8),
                    "pooler_bias": torch.zeros(32)})  # fmt: skip
    with pytest.raises(InvalidPrompt, match="needs both"):
        TaskSpec(**{**spec.__dict__, "pooler_weight": torch.zeros(32, 32)})
