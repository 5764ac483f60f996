"""A tiny random BERT with the default backbone's real tokenizer, saved where the real loading
code can read it (the `tiny_backbone_dir` fixture builds the same for the tests)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from app.backbone import resolve_source
from app.settings import DEFAULT_BACKBONE


def save_tiny_backbone(path: Path) -> Path:
    """A 2-layer, 32-wide BERT with random weights (seed 0)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_source(DEFAULT_BACKBONE))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
