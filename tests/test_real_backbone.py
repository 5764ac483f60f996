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


BF16_TEXTS = [
    *TEXTS,
    "i lost my card yesterday , how do i block it ?",
    "why was my transfer declined twice this morning",
    "urgent ! you have won a 1 week free holiday . call now",
    "stocks rallied on tuesday after the central bank held rates",
]
FILLER = "a long message that pads the batch out to many more positions than the others " * 6
BF16_PROB_TOLERANCE = 0.02  # measured here: at most 0.0065 on the shipped tasks


def test_in_bf16_a_batch_moves_scores_a_little_and_clear_labels_not_at_all() -> None:
    """fp32 is batch-invariant to 1e-4 (above); bf16 is not exactly: which rows share a batch
    changes the kernels' blocking, so roundings, by up to ~0.5 % of probability here. Bounded,
    and labels with a clear margin never move. README, 'Device and precision'."""
    from app.registry import Registry

    backbone = load_backbone(DEFAULT_BACKBONE, device="cpu", precision="bf16")
    engine, registry = Engine(backbone), Registry("prompts", backbone.identity)
    registry.load()
    for name in ("sentiment", "intent", "question-type"):
        info = registry.resolve(name)
        task = engine.to_device(registry.read_spec(name, info.version), name, info.version)
        rows = [Row(backbone.tokenizer(text)["input_ids"], task) for text in BF16_TEXTS]
        fillers = [Row(backbone.tokenizer(FILLER)["input_ids"], task)] * 8
        alone = torch.stack([engine.forward([row])[0] for row in rows]).softmax(-1)
        mixed = torch.stack(engine.forward(rows + fillers)[: len(rows)]).softmax(-1)
        assert (alone - mixed).abs().max().item() <= BF16_PROB_TOLERANCE, name
        top = alone.topk(2, dim=-1).values
        clear = top[:, 0] - top[:, 1] > 2 * BF16_PROB_TOLERANCE
        assert torch.equal(alone.argmax(-1)[clear], mixed.argmax(-1)[clear]), name
