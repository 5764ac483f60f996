"""The training loop: only the soft prompt and the head learn; the backbone stays frozen.

L(P, W, b) = -sum log p(y | [P; X]) with the serving forward (optionally mixed with a teacher's
soft labels: knowledge distillation, Hinton et al. 2015), AdamW with separate learning
rates for prompt and head, linear warm-up and decay, batches of similar length, evaluation
through the serving engine after each epoch, and the best epoch kept.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from app.backbone import Backbone, choose_dtype
from app.task import TaskSpec
from app.training.config import TrainConfig
from app.training.data import Dataset, check_known_labels, check_training_labels
from app.training.distill import objective, soft_targets
from app.training.head_init import fit_probe, pooled_features
from app.training.init import initial_prompt, prompt_from_file
from app.training.model import PromptClassifier, backbone_dropout, pad_batch
from app.training.optim import build_optimizer
from app.training.reparam import build_reparam
from app.training.scores import Scores, score

log = logging.getLogger(__name__)

# Batches are made of similar lengths within windows of this many batches, then shuffled.
LENGTH_WINDOW = 50


@dataclass
class EpochResult:
    epoch: int
    loss: float
    seconds: float
    examples_per_s: float
    scores: Scores | None = None


@dataclass
class TrainResult:
    spec: TaskSpec
    best_epoch: int  # 0: the warm-started task, before any step, was never beaten
    history: list[EpochResult] = field(default_factory=list)
    start_scores: Scores | None = None  # the warm-started task's, when it was scored

    @property
    def best_scores(self) -> Scores | None:
        if self.best_epoch == 0:
            return self.start_scores
        return self.history[self.best_epoch - 1].scores


Evaluate = Callable[[TaskSpec], list[str]]  # predicted labels for the eval texts


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where serving would pick bf16 (or where asked); else none (fp32). Never
    fp16: its range needs loss scaling, which training here does not do."""
    dtype = choose_dtype(precision, device)
    return dtype if dtype == torch.bfloat16 else None


def train(
    config: TrainConfig,
    backbone: Backbone,
    train_data: Dataset,
    eval_data: Dataset | None = None,
    evaluate: Evaluate | None = None,
    on_batch: Callable[[float, int], None] | None = None,
    on_best: Callable[[TrainResult], None] | None = None,
) -> TrainResult:
    """Train one task. `backbone` must be an fp32 eager one; `evaluate` scores on `eval_data`.

    `on_best` is called with the result so far each time an epoch beats the best before it
    (and first for the warm-started task, when there is a probe warm start and an eval set).
    """
    labels = check_training_labels(train_data)
    if eval_data is not None:
        check_known_labels(eval_data, labels)
    soft = soft_targets(train_data, labels, config.distill_weight, config.distill_temperature)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = _build_model(config, backbone, labels, generator)
    ids = _tokenize(backbone, train_data.texts, config, model.prompt.shape[0])
    targets = torch.tensor([labels.index(label) for label in train_data.labels])
    steps_per_epoch = math.ceil(len(ids) / config.batch_size)
    rates = (config.prompt_lr, config.head_lr)
    total_steps = steps_per_epoch * config.epochs
    optimizer, scheduler = build_optimizer(
        model, rates, config.weight_decay, config.warmup, total_steps
    )
    amp = autocast_dtype(config.precision, backbone.device)
    if config.head_init == "probe":
        _warm_start_head(model, ids, targets, config, amp)
    elif config.head_init != "zeros":
        raise ValueError(f"unknown head init {config.head_init!r}; choose probe or zeros")
    result = TrainResult(spec=model.to_spec(labels), best_epoch=0)
    best_key: tuple[float, float] | None = None
    if config.head_init == "probe" and eval_data is not None and evaluate is not None:
        # The warm start is a task already (the probe's head on the initial prompt): epochs must
        # beat it on the eval set to be kept, so training can never ship something worse.
        result.start_scores = score(eval_data.labels, evaluate(result.spec), labels)
        best_key = (result.start_scores.accuracy, result.start_scores.macro_f1)
        log.info(
            "warm start: accuracy %.4f macro_f1 %.4f",
            result.start_scores.accuracy,
            result.start_scores.macro_f1,
        )
        if on_best:
            on_best(result)
    stale = 0
    for epoch in range(1, config.epochs + 1):
        started, losses = time.perf_counter(), []
        with backbone_dropout(backbone.model, config.dropout):
            for batch in _batches(ids, config.batch_size, generator):
                data = (ids, targets, soft, batch)
                loss = _step(model, optimizer, scheduler, data, amp, config)
                losses.append(loss)
                if on_batch:
                    on_batch(loss, len(batch))
        seconds = time.perf_counter() - started
        spec = model.to_spec(labels)
        epoch_result = EpochResult(epoch, sum(losses) / len(losses), seconds, len(ids) / seconds)
        if eval_data is not None and evaluate is not None:
            epoch_result.scores = score(eval_data.labels, evaluate(spec), labels)
        result.history.append(epoch_result)
        _log_epoch(epoch_result)
        key = (
            (epoch_result.scores.accuracy, epoch_result.scores.macro_f1)
            if epoch_result.scores
            else (float(epoch), 0.0)
        )
        if best_key is None or key > best_key:
            best_key, result.best_epoch, result.spec, stale = key, epoch, spec, 0
            if on_best:
                on_best(result)
        else:
            stale += 1
            if config.patience and stale >= config.patience:
                log.info("no improvement for %d epoch(s): stopping early", stale)
                break
    return result


def _build_model(
    config: TrainConfig, backbone: Backbone, labels: tuple[str, ...], generator: torch.Generator
) -> PromptClassifier:
    if not 1 <= config.prompt_len <= backbone.max_prompt_len:
        raise ValueError(
            f"prompt length {config.prompt_len} must be 1 to {backbone.max_prompt_len}"
        )
    source = None
    if config.init == "prompt" and config.init_prompt:
        source = prompt_from_file(config.init_prompt, backbone.identity)
    embeddings = backbone.model.get_input_embeddings().weight
    prompt = initial_prompt(
        config.init,
        config.prompt_len,
        embeddings,  # type: ignore[arg-type]
        backbone.tokenizer,
        generator,
        labels=labels,
        text=config.init_text,
        source=source,
    )
    reparam = build_reparam(config.reparam, prompt, config.reparam_bottleneck)
    model = PromptClassifier(backbone, prompt, len(labels), config.pooling, reparam)
    return model.to(backbone.device)


def _warm_start_head(
    model: PromptClassifier,
    ids: list[list[int]],
    targets: torch.Tensor,
    config: TrainConfig,
    amp: torch.dtype | None,
) -> None:
    started = time.perf_counter()
    features = pooled_features(model, ids, max(64, config.batch_size * 2), amp)
    weight, bias = fit_probe(features, targets, model.head.out_features, config.probe_l2)
    model.head.weight.data.copy_(weight)
    model.head.bias.data.copy_(bias)
    with torch.no_grad():
        predicted = (features @ weight.T + bias).argmax(1).cpu()
    log.info(
        "head warm start: probe train accuracy %.4f (%.1f s)",
        float((predicted == targets).float().mean()),
        time.perf_counter() - started,
    )


def _tokenize(
    backbone: Backbone, texts: list[str], config: TrainConfig, prompt_len: int
) -> list[list[int]]:
    """Once, up front; cut exactly as serving cuts (special tokens kept)."""
    max_tokens = min(config.max_length, backbone.max_positions - prompt_len)
    encoded = backbone.tokenizer(texts, truncation=True, max_length=max_tokens)
    return [list(ids) for ids in encoded["input_ids"]]


def _batches(
    ids: list[list[int]], batch_size: int, generator: torch.Generator
) -> Iterator[list[int]]:
    """Shuffle, sort by length within windows (less padding), cut into batches, shuffle those."""
    order = torch.randperm(len(ids), generator=generator).tolist()
    window = batch_size * LENGTH_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(ids[i]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    for b in torch.randperm(len(batches), generator=generator).tolist():
        yield batches[b]


def _step(
    model: PromptClassifier,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    data: tuple[list[list[int]], torch.Tensor, torch.Tensor | None, list[int]],
    amp: torch.dtype | None,
    config: TrainConfig,
) -> float:
    ids, targets, soft, batch = data
    device = model.prompt.device
    padded, lengths = pad_batch(ids, batch, model.pad_id)
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        logits = model(padded.to(device), lengths.to(device))  # [batch, L]
    soft_batch = None if soft is None else soft[batch].to(device)
    mix = (config.label_smoothing, config.distill_weight, config.distill_temperature)
    loss = objective(logits.float(), targets[batch].to(device), soft_batch, *mix)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([*model.prompt_parameters(), *model.head.parameters()], 1.0)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def _log_epoch(result: EpochResult) -> None:
    extra: dict[str, Any] = {}
    if result.scores:
        extra = {"accuracy": result.scores.accuracy, "macro_f1": result.scores.macro_f1}
    log.info(
        "epoch %d: loss %.4f, %.0f examples/s, %.1f s %s",
        result.epoch,
        result.loss,
        result.examples_per_s,
        result.seconds,
        " ".join(f"{k} {v:.4f}" for k, v in extra.items()),
    )
