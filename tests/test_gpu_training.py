"""Prompt tuning on a GPU (issue 3): skipped where CUDA is absent.

The trainer and the engine as tests/test_training.py uses them, with the tiny random BERT on
CUDA: in the device's own precision (bf16 autocast on a GPU) a few dozen steps learn an easy task,
the backbone's weights come out bit-identical, and what the trainer scored is what the engine on
the same device serves; in fp32 the training forward is the serving forward to 1e-4 (the issue's
bar).
PROMPTSERVE_GPU_TEST_DEVICE=cpu runs the same tests on the CPU (a dry run where there is no GPU).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from app.backbone import Backbone, load_backbone
from app.engine import Engine
from app.task import POOLINGS
from app.training.config import TrainConfig
from app.training.evaluate import predict_local
from app.training.trainer import autocast_dtype, train
from tests.test_training import assert_random_task_trains_as_served, synthetic

DEVICE = os.environ.get("PROMPTSERVE_GPU_TEST_DEVICE", "cuda")

pytestmark = pytest.mark.skipif(
    DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU"
)


@pytest.fixture(scope="module")
def device_trainer(tiny_backbone_dir: Path) -> Backbone:
    """The tiny BERT as the trainer loads it, on the device: fp32 weights, eager."""
    return load_backbone(str(tiny_backbone_dir), device=DEVICE, precision="fp32", trace="off")


@pytest.fixture(scope="module")
def device_engine(tiny_backbone_dir: Path) -> Engine:
    """The serving engine on the device, in the device's default precision."""
    return Engine(load_backbone(str(tiny_backbone_dir), device=DEVICE, precision="auto"))


def test_training_on_the_device_learns_and_leaves_the_backbone_untouched(
    device_trainer: Backbone, device_engine: Engine
) -> None:
    before = {k: v.clone() for k, v in device_trainer.model.state_dict().items()}
    train_data, eval_data = synthetic(640, seed=1), synthetic(200, seed=2)
    config = TrainConfig(epochs=2, batch_size=32, prompt_len=4)  # precision auto: bf16 on a GPU
    print(f"autocast on {DEVICE}: {autocast_dtype(config.precision, device_trainer.device)}")
    scored: list[list[str]] = []

    def evaluate(spec):  # type: ignore[no-untyped-def]
        scored.append(predict_local(device_engine, spec, eval_data.texts))
        return scored[-1]

    result = train(config, device_trainer, train_data, eval_data, evaluate)
    assert len(result.history) == 2  # 40 steps
    assert result.best_scores is not None and result.best_scores.accuracy >= 0.95
    after = device_trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in device_trainer.model.parameters())
    # the kept task, served again by the engine on the device, predicts what the trainer scored
    served = predict_local(device_engine, result.spec, eval_data.texts)
    truth = eval_data.labels
    assert sum(s == t for s, t in zip(served, truth, strict=True)) / len(truth) == pytest.approx(
        result.best_scores.accuracy
    )
    assert served in scored


@pytest.mark.parametrize("pooling", POOLINGS)
def test_the_training_forward_is_the_serving_forward_on_the_device(
    pooling: str, device_trainer: Backbone
) -> None:
    assert_random_task_trains_as_served(pooling, device_trainer, atol=1e-4)  # the bar
