"""The TorchScript-traced encoder: used only when it reproduces the eager model."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from app.backbone import Backbone
from app.encoder import EagerEncoder, build_encoder


class BranchyEncoder(torch.nn.Module):
    """A model whose output depends on a Python branch over values: a trace freezes the branch."""

    config = SimpleNamespace(hidden_size=8)
    dtype = torch.float32

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        scale = 2.0 if bool(attention_mask.sum() > 30) else 1.0
        return SimpleNamespace(last_hidden_state=inputs_embeds * scale, pooler_output=None)


def test_a_trace_that_differs_from_the_model_is_not_used(caplog) -> None:
    encode = build_encoder(BranchyEncoder(), torch.device("cpu"), trace=True)  # type: ignore[arg-type]
    assert isinstance(encode, EagerEncoder)
    assert "trace failed" in caplog.text


def test_trace_matches_eager_on_the_tiny_backbone(tiny_backbone: Backbone) -> None:
    eager = EagerEncoder(tiny_backbone.model)
    traced = build_encoder(tiny_backbone.model, torch.device("cpu"), trace=True)
    assert not isinstance(traced, EagerEncoder), "the tiny BERT should be traceable"
    embeds = torch.randn(4, 23, 32)
    mask = torch.ones(4, 23, dtype=torch.long)
    mask[1, 10:] = 0
    with torch.inference_mode():
        for want, got in zip(eager(embeds, mask), traced(embeds, mask), strict=True):
            assert (want - got).abs().max().item() <= 1e-5
