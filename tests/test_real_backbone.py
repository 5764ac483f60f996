"""The real default backbone (all-MiniLM-L6-v2, shipped on PyPI): loads offline, batches exactly."""

from __future__ import annotations

import pytest
import torch

from app.backbone import Backbone, load_backbone
from app.engine import Engine, Row
from app.settings import DEFAULT_BACKBONE
from tests.helpers import random_spec
from tests.test_engine import TEXTS, TOLERANCE, reference_logits


@pytest.fixture(scope="module")
def minilm() -> Backbone:
    return load_backbone(DEFAULT_BACKBONE, device="cpu", precision="fp32")


def test_default_backbone_loads_offline_with_its_identity(minilm: Backbone) -> None:
    assert minilm.identity.name == DEFAULT_BACKBONE
    assert minilm.hidden_size == 384
    assert len(minilm.identity.fingerprint) == 16
    assert not any(p.requires_grad for p in minilm.model.parameters())
    assert not minilm.model.training


def test_fingerprint_tells_same_size_backbones_apart(
    minilm: Backbone, tiny_backbone: Backbone
) -> None:
    """Same config, other weights: the fingerprint must differ (a prompt is tied to its weights)."""
    from app.backbone import fingerprint

    same = fingerprint(minilm.model)
    embeddings = minilm.model.get_input_embeddings().weight
    saved = embeddings.detach().clone()
    try:
        with torch.no_grad():
            embeddings[0, 0] += 1.0
        assert fingerprint(minilm.model) != same
    finally:
        with torch.no_grad():
            embeddings.copy_(saved)
    assert fingerprint(minilm.model) == same


def test_mixed_batch_on_real_backbone_matches_reference_and_alone(minilm: Backbone) -> None:
    engine = Engine(minilm)
    specs = [
        random_spec(384, prompt_len=m, num_labels=n, pooling=p, seed=m)
        for m, n, p in [(20, 2, "mean"), (5, 4, "cls"), (40, 6, "first"), (1, 77, "mean")]
    ]
    tasks = [engine.to_device(spec, f"t{i}", 1) for i, spec in enumerate(specs)]
    rows, expected = [], []
    for i, text in enumerate(TEXTS):
        spec, task = specs[i % 4], tasks[i % 4]
        rows.append(Row(minilm.tokenizer(text)["input_ids"], task))
        expected.append(reference_logits(minilm, spec, text))
    batched = engine.forward(rows)
    for row, got, want in zip(rows, batched, expected, strict=True):
        assert (got - want).abs().max().item() <= TOLERANCE
        assert (got - engine.forward([row])[0]).abs().max().item() <= TOLERANCE
