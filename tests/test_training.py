"""Prompt tuning: the trainer learns, never touches the backbone, and computes serving's logits."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from app.backbone import Backbone
from app.engine import Engine, Row
from app.task import POOLINGS
from app.training import data
from app.training.config import TrainConfig
from app.training.evaluate import predict_local
from app.training.model import PromptClassifier, backbone_dropout, pad_batch
from app.training.trainer import TrainResult, train

POSITIVE = ["great", "wonderful", "superb", "lovely", "excellent", "brilliant"]
NEGATIVE = ["awful", "terrible", "dreadful", "horrible", "boring", "poor"]
FILLER = ["the", "film", "was", "really", "quite", "a", "plot", "and", "cast", "story"]


def synthetic(count: int, seed: int) -> data.Dataset:
    """An easy task: the label is which word list the text's one key word comes from."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        label = rng.choice(["positive", "negative"])
        words = rng.sample(FILLER, rng.randint(3, 8))
        words.insert(
            rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "positive" else NEGATIVE)
        )
        texts.append(" ".join(words))
        labels.append(label)
    return data.Dataset(texts, labels, Path(f"synthetic-{seed}.jsonl"))


def train_scored(
    config: TrainConfig,
    trainer_backbone: Backbone,
    serving_backbone: Backbone,
    train_data: data.Dataset,
    eval_data: data.Dataset,
    **hooks: Any,
) -> TrainResult:
    """Train with each epoch scored on `eval_data` through the serving engine, as the CLI does."""
    engine = Engine(serving_backbone)
    evaluate = lambda spec: predict_local(engine, spec, eval_data.texts)  # noqa: E731
    return train(config, trainer_backbone, train_data, eval_data, evaluate, **hooks)


def test_a_few_dozen_steps_reach_high_accuracy_on_an_easy_task(
    trainer_backbone: Backbone, tiny_backbone: Backbone
) -> None:
    """The whole recipe (probe warm start, then steps). The warm start alone already scores high
    on this tiny backbone, so the next test proves that the steps themselves learn."""
    train_data, eval_data = synthetic(640, seed=1), synthetic(200, seed=2)
    config = TrainConfig(epochs=2, batch_size=32, prompt_len=4, precision="fp32")
    result = train_scored(config, trainer_backbone, tiny_backbone, train_data, eval_data)
    assert len(result.history) == 2  # 40 steps in all
    assert result.best_scores is not None and result.best_scores.accuracy >= 0.95


def test_the_steps_themselves_learn_from_a_zero_head(
    trainer_backbone: Backbone, tiny_backbone: Backbone
) -> None:
    """Regression (audit): the test above also passed with both learning rates at 0. From a
    zero head, 60 steps must climb well above chance, where the same run at rate 0 stays."""
    train_data, eval_data = synthetic(640, seed=1), synthetic(200, seed=2)

    def curve(rate: float) -> list[float]:
        config = TrainConfig(
            epochs=3, batch_size=32, prompt_len=4, precision="fp32", head_init="zeros",
            prompt_lr=3 * rate, head_lr=10 * rate, warmup=0.0,
        )  # fmt: skip
        result = train_scored(config, trainer_backbone, tiny_backbone, train_data, eval_data)
        return [epoch.scores.accuracy for epoch in result.history if epoch.scores is not None]

    learned, frozen = curve(1e-2), curve(0.0)
    assert learned[-1] >= 0.7 and learned[-1] > learned[0]
    assert max(frozen) <= 0.6  # a zero head answers one label for every input


def test_epochs_must_beat_the_warm_start_to_be_kept(
    trainer_backbone: Backbone, tiny_backbone: Backbone
) -> None:
    """The probe warm start is a task already: training that cannot beat it on the eval set
    (here it cannot change anything: both learning rates are 0) keeps it, as epoch 0."""
    train_data, eval_data = synthetic(160, seed=1), synthetic(60, seed=2)
    config = TrainConfig(
        epochs=2, prompt_len=4, precision="fp32", prompt_lr=0.0, head_lr=0.0, warmup=0.0
    )
    kept: list[int] = []
    result = train_scored(
        config,
        trainer_backbone,
        tiny_backbone,
        train_data,
        eval_data,
        on_best=lambda r: kept.append(r.best_epoch),
    )
    assert result.best_epoch == 0 and kept == [0]  # epochs 1 and 2 only tied it
    assert len(result.history) == 2
    assert result.start_scores is not None and result.best_scores is result.start_scores
    epoch_scores = result.history[0].scores
    assert epoch_scores is not None and epoch_scores.accuracy == result.start_scores.accuracy
    warm = train(
        TrainConfig(epochs=0, prompt_len=4, precision="fp32"),
        trainer_backbone,
        train_data,
    ).spec
    assert torch.equal(result.spec.head_weight, warm.head_weight)


def test_prompt_and_head_learn_from_a_zero_head(trainer_backbone: Backbone) -> None:
    """Without the probe warm start, gradients alone must still drive the loss down."""
    config = TrainConfig(
        epochs=4,
        batch_size=16,
        head_init="zeros",
        prompt_lr=0.1,
        head_lr=0.1,
        prompt_len=4,
        precision="fp32",
        warmup=0.0,
        init="vocab",
    )
    result = train(config, trainer_backbone, synthetic(320, seed=1))  # 80 steps
    losses = [epoch.loss for epoch in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert result.spec.head_weight.abs().sum() > 0


def test_the_backbone_is_bit_identical_after_training(trainer_backbone: Backbone) -> None:
    before = {k: v.clone() for k, v in trainer_backbone.model.state_dict().items()}
    train(
        TrainConfig(epochs=1, prompt_len=3, precision="fp32"),
        trainer_backbone,
        synthetic(64, seed=3),
    )
    after = trainer_backbone.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in trainer_backbone.model.parameters())


def test_the_same_seed_trains_the_same_prompt(trainer_backbone: Backbone) -> None:
    config = TrainConfig(epochs=1, prompt_len=3, precision="fp32", seed=7)
    first = train(config, trainer_backbone, synthetic(96, seed=4)).spec
    second = train(config, trainer_backbone, synthetic(96, seed=4)).spec
    assert torch.equal(first.prompt, second.prompt)
    assert torch.equal(first.head_weight, second.head_weight)
    other = train(
        TrainConfig(epochs=1, prompt_len=3, precision="fp32", seed=8),
        trainer_backbone,
        synthetic(96, seed=4),
    ).spec
    assert not torch.equal(first.prompt, other.prompt)


def test_backbone_dropout_is_on_for_the_steps_only(trainer_backbone: Backbone) -> None:
    model = trainer_backbone.model
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    before = [m.p for m in dropouts]
    embeds = torch.randn(2, 6, model.config.hidden_size)
    mask = torch.ones(2, 6, dtype=torch.long)
    with torch.no_grad():
        clean = trainer_backbone.encode(embeds, mask)[0]
        with backbone_dropout(model, 0.3):
            assert model.training and all(m.p == 0.3 for m in dropouts)
            noisy = trainer_backbone.encode(embeds, mask)[0]
        after = trainer_backbone.encode(embeds, mask)[0]
    assert not model.training and [m.p for m in dropouts] == before
    assert not torch.allclose(clean, noisy)
    assert torch.equal(clean, after)


def test_dropout_and_label_smoothing_train_deterministically_and_leave_the_backbone(
    trainer_backbone: Backbone,
) -> None:
    before = {k: v.clone() for k, v in trainer_backbone.model.state_dict().items()}
    config = TrainConfig(
        epochs=1, prompt_len=3, precision="fp32", seed=5, dropout=0.1, label_smoothing=0.1
    )
    first = train(config, trainer_backbone, synthetic(96, seed=4)).spec
    second = train(config, trainer_backbone, synthetic(96, seed=4)).spec
    plain = train(
        TrainConfig(epochs=1, prompt_len=3, precision="fp32", seed=5),
        trainer_backbone,
        synthetic(96, seed=4),
    ).spec
    assert torch.equal(first.prompt, second.prompt)
    assert not torch.equal(first.prompt, plain.prompt)
    assert not trainer_backbone.model.training
    after = trainer_backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_the_training_forward_is_the_serving_forward(
    pooling: str, trainer_backbone: Backbone
) -> None:
    """Training and serving must compute the same logits for a task, whatever its pooling."""
    assert_random_task_trains_as_served(pooling, trainer_backbone)


def assert_random_task_trains_as_served(
    pooling: str, backbone: Backbone, atol: float = 1e-5
) -> None:
    """A random 5-vector task on the tiny BERT, on the backbone's device: see below."""
    torch.manual_seed(0)
    model = PromptClassifier(backbone, torch.randn(5, 32) * 0.5, 3, pooling)  # type: ignore[arg-type]
    torch.nn.init.normal_(model.head.weight)
    assert_serving_computes_the_trainers_logits(model.to(backbone.device), backbone, atol)


def assert_serving_computes_the_trainers_logits(
    model: PromptClassifier, backbone: Backbone, atol: float = 1e-5
) -> None:
    """The model's task file, served by the engine, gives the model's own logits."""
    spec = model.to_spec(("a", "b", "c"))
    texts = ["short", "a somewhat longer text than the first one", "three words here"]
    ids = [backbone.tokenizer(t)["input_ids"] for t in texts]
    padded, lengths = pad_batch(ids, [0, 1, 2], model.pad_id)
    device = model.prompt.device  # the backbone's: the CPU here, the GPU in test_gpu_training
    with torch.no_grad():
        trained = model(padded.to(device), lengths.to(device)).cpu()
    engine = Engine(backbone)
    task = engine.to_device(spec, "t", 1)
    served = torch.stack(engine.forward([Row(i, task) for i in ids])).cpu()
    assert torch.allclose(trained, served, atol=atol)


def test_a_trained_prompt_served_through_the_api_predicts_what_the_trainer_scored(
    trainer_backbone: Backbone,
    tiny_backbone: Backbone,
    make_client,  # type: ignore[no-untyped-def]
) -> None:
    from app import prompt_file

    train_data, eval_data = synthetic(320, seed=5), synthetic(100, seed=6)
    engine = Engine(tiny_backbone)
    result = train(
        TrainConfig(epochs=1, prompt_len=4, precision="fp32"), trainer_backbone, train_data
    )
    trainer_says = predict_local(engine, result.spec, eval_data.texts)
    client = make_client()
    payload = prompt_file.encode(result.spec, tiny_backbone.identity)
    assert (
        client.put("/prompts/synthetic", files={"file": ("p.safetensors", payload)}).status_code
        == 201
    )
    served = []
    for start in range(0, len(eval_data.texts), 50):
        response = client.post(
            "/classify", json={"task": "synthetic", "inputs": eval_data.texts[start : start + 50]}
        )
        assert response.status_code == 200
        served += [p["label"] for p in response.json()["predictions"]]
    assert served == trainer_says
