"""Residual prompt reparameterisation: training-only, and what is served is what was trained."""

from __future__ import annotations

import pytest
import torch

from app.backbone import Backbone
from app.training.config import TrainConfig
from app.training.model import PromptClassifier
from app.training.reparam import ResidualPrompt, build_reparam
from app.training.trainer import train
from tests.test_training import (
    assert_serving_computes_the_trainers_logits,
    synthetic,
    train_scored,
)


def test_the_residual_branch_is_added_at_the_prompts_own_scale() -> None:
    torch.manual_seed(0)
    prompt = torch.randn(6, 32) * 0.1
    reparam = build_reparam("residual", prompt, 0)
    assert isinstance(reparam, ResidualPrompt)
    assert reparam.down.out_features == 16  # half the hidden size by default
    branch = reparam(prompt) - prompt  # [6, 32]: LayerNorm output times the gain
    rms = prompt.pow(2).mean().sqrt()
    assert torch.allclose(branch.pow(2).mean(1).sqrt(), rms.expand(6), rtol=1e-3)
    assert build_reparam("none", prompt, 0) is None
    with pytest.raises(ValueError, match="unknown prompt reparameterisation"):
        build_reparam("lstm", prompt, 0)
    with pytest.raises(ValueError, match="bottleneck -4"):
        build_reparam("residual", prompt, -4)


def test_the_served_prompt_is_the_reparameterised_one(trainer_backbone: Backbone) -> None:
    """The task file holds P' = reparam(P): serving it gives the trainer's logits exactly."""
    torch.manual_seed(0)
    prompt = torch.randn(5, 32) * 0.5
    model = PromptClassifier(
        trainer_backbone, prompt, 3, "mean", build_reparam("residual", prompt, 8)
    )
    torch.nn.init.normal_(model.head.weight)
    assert model.reparam is not None  # and its weights learn at the prompt's rate
    assert len(model.prompt_parameters()) == 1 + len(list(model.reparam.parameters()))
    spec = model.to_spec(("a", "b", "c"))
    assert not torch.allclose(spec.prompt, prompt)
    assert torch.allclose(spec.prompt, model.soft_prompt().detach())
    assert_serving_computes_the_trainers_logits(model, trainer_backbone)


def test_training_through_the_residual_mlp_learns_and_leaves_the_backbone(
    trainer_backbone: Backbone, tiny_backbone: Backbone
) -> None:
    before = {k: v.clone() for k, v in trainer_backbone.model.state_dict().items()}
    config = TrainConfig(epochs=2, prompt_len=4, precision="fp32", reparam="residual")
    train_data, eval_data = synthetic(640, seed=1), synthetic(200, seed=2)
    result = train_scored(config, trainer_backbone, tiny_backbone, train_data, eval_data)
    assert result.best_scores is not None and result.best_scores.accuracy >= 0.95
    after = trainer_backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    again = train_scored(config, trainer_backbone, tiny_backbone, train_data, eval_data)
    assert torch.equal(result.spec.prompt, again.spec.prompt)  # deterministic per seed
    plain = train(
        TrainConfig(epochs=2, prompt_len=4, precision="fp32"), trainer_backbone, train_data
    )
    assert not torch.equal(result.spec.prompt, plain.spec.prompt)
