"""Encoders other than BERT: each serves by the formula, and inputs past its positions are cut.

Tiny random models of each family, built from a config with the default backbone's tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoTokenizer,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    PretrainedConfig,
    RobertaConfig,
)

from app.backbone import load_backbone, resolve_source
from app.engine import Engine, Row
from app.settings import DEFAULT_BACKBONE
from tests.helpers import random_spec
from tests.test_engine import TOLERANCE, reference_logits

SMALL = {"num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}


def configs(vocab_size: int, pad_token_id: int) -> dict[str, PretrainedConfig]:
    return {
        # RoBERTa numbers positions from pad_token_id + 1: 130 embeddings leave 128 positions.
        "roberta": RobertaConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            max_position_embeddings=130,
            pad_token_id=pad_token_id,
            **SMALL,
        ),
        "deberta-v2": DebertaV2Config(
            vocab_size=vocab_size, hidden_size=32, max_position_embeddings=128, **SMALL
        ),
        "distilbert": DistilBertConfig(
            vocab_size=vocab_size, dim=32, n_layers=2, n_heads=4, hidden_dim=64
        ),
    }


def save(config: PretrainedConfig, path: Path) -> Path:
    from transformers import AutoModel

    tokenizer = AutoTokenizer.from_pretrained(resolve_source(DEFAULT_BACKBONE))
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tokenizer_ids() -> tuple[int, int]:
    tokenizer = AutoTokenizer.from_pretrained(resolve_source(DEFAULT_BACKBONE))
    return tokenizer.vocab_size, tokenizer.pad_token_id


@pytest.mark.parametrize("family", ["roberta", "deberta-v2", "distilbert"])
def test_encoder_serves_by_the_formula_and_cuts_long_inputs(
    family: str, tokenizer_ids: tuple[int, int], tmp_path: Path
) -> None:
    """Regression (RoBERTa): a long input used to index past the position table, and failed
    every request that shared its batch with a 500."""
    backbone = load_backbone(
        str(save(configs(*tokenizer_ids)[family], tmp_path)), "cpu", "fp32", trace="off"
    )
    engine = Engine(backbone)
    spec = random_spec(backbone.hidden_size, prompt_len=4, pooling="mean", seed=3)
    task = engine.to_device(spec, "t", 1)
    short_ids = backbone.tokenizer("a short text")["input_ids"]
    most = engine.max_text_tokens(task.prompt_len)
    long_ids = backbone.tokenizer("word " * 400, truncation=True, max_length=most)["input_ids"]

    long_logits, short_logits = engine.forward([Row(long_ids, task), Row(short_ids, task)])

    reference = reference_logits(backbone, spec, "a short text")
    assert (short_logits - reference).abs().max().item() <= TOLERANCE
    assert torch.isfinite(long_logits).all()


def test_factorised_embeddings_are_refused_at_load(
    tokenizer_ids: tuple[int, int], tmp_path: Path
) -> None:
    """ELECTRA's token embeddings are narrower than its hidden size: a hidden-size prompt cannot
    be prepended to them. Regression: the server never became ready, with an index error."""
    vocab_size, _ = tokenizer_ids
    config = ElectraConfig(vocab_size=vocab_size, embedding_size=16, hidden_size=32, **SMALL)
    with pytest.raises(ValueError, match="16-wide token embeddings but hidden size 32"):
        load_backbone(str(save(config, tmp_path)), "cpu", "fp32", trace="off")
