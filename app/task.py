"""Task: one classifier = soft prompt P [m, d] + head (W [L, d], b [L]) + labels + pooling.

A task pooled `first` may carry its own pooler (D [d, d], c [d]): then it reads position 0's
hidden state h through tanh(D h + c) instead of the backbone's pooler. That is the RoBERTa-style
classifier (dense -> tanh -> out_proj) that HF PEFT trains on RoBERTa-family backbones."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch

from app.errors import InvalidPrompt, InvalidTaskId

# mean-normalized: the mean scaled to unit length, the sentence embedding that sentence-transformers
# gives for models whose pipeline ends in Normalize (all-MiniLM-L6-v2's does); text length no
# longer sets the features' scale.
Pooling = Literal["mean", "cls", "first", "mean-normalized"]
POOLINGS: tuple[Pooling, ...] = ("mean", "cls", "first", "mean-normalized")
MAX_PROMPT_LEN = 128
TASK_ID_PATTERN = re.compile(r"^[a-z0-9_\-][a-z0-9_.\-]{0,63}$")


def check_task_id(task: str) -> str:
    """Refuse anything that is not a safe task id (it becomes a directory name)."""
    if not isinstance(task, str) or not TASK_ID_PATTERN.fullmatch(task):
        raise InvalidTaskId(
            f"invalid task id {task!r}: use 1-64 of a-z 0-9 '-' '_' '.', not starting with '.'"
        )
    return task


def check_pooling(pooling: str) -> Pooling:
    if pooling not in POOLINGS:
        raise InvalidPrompt(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
    return cast(Pooling, pooling)


@dataclass(frozen=True)
class TaskSpec:
    """A task's weights and how to read its outputs; float32 on CPU, validated on creation."""

    prompt: torch.Tensor  # [m, d]
    head_weight: torch.Tensor  # [L, d]
    head_bias: torch.Tensor  # [L]
    labels: tuple[str, ...]
    pooling: Pooling = "mean"
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    pooler_weight: torch.Tensor | None = None  # [d, d]: the task's own pooler, `first` only
    pooler_bias: torch.Tensor | None = None  # [d]

    def __post_init__(self) -> None:
        check_pooling(self.pooling)
        _check_tensor("prompt", self.prompt, 2)
        _check_tensor("head.weight", self.head_weight, 2)
        _check_tensor("head.bias", self.head_bias, 1)
        prompt_len, hidden = self.prompt.shape
        self._check_pooler(hidden)
        if not 1 <= prompt_len <= MAX_PROMPT_LEN:
            raise InvalidPrompt(f"prompt has {prompt_len} vectors; allowed 1 to {MAX_PROMPT_LEN}")
        num_labels = self.head_weight.shape[0]
        if self.head_weight.shape[1] != hidden:
            raise InvalidPrompt(
                f"head.weight has shape {list(self.head_weight.shape)}; expected [L, {hidden}]"
            )
        if self.head_bias.shape[0] != num_labels:
            raise InvalidPrompt(
                f"head.bias has shape {list(self.head_bias.shape)}; expected [{num_labels}]"
            )
        _check_labels(self.labels, num_labels)
        _check_text("description", self.description)
        _check_text("metrics", json.dumps(self.metrics, ensure_ascii=False))

    def _check_pooler(self, hidden: int) -> None:
        if self.pooler_weight is None and self.pooler_bias is None:
            return
        if self.pooler_weight is None or self.pooler_bias is None:
            raise InvalidPrompt("a task pooler needs both pooler.weight and pooler.bias")
        if self.pooling != "first":
            raise InvalidPrompt(f"a task pooler reads position 0: pooling must be 'first', not "
                                f"{self.pooling!r}")  # fmt: skip
        _check_tensor("pooler.weight", self.pooler_weight, 2)
        _check_tensor("pooler.bias", self.pooler_bias, 1)
        if list(self.pooler_weight.shape) != [hidden, hidden]:
            raise InvalidPrompt(
                f"pooler.weight has shape {list(self.pooler_weight.shape)}; "
                f"expected [{hidden}, {hidden}]"
            )
        if list(self.pooler_bias.shape) != [hidden]:
            raise InvalidPrompt(
                f"pooler.bias has shape {list(self.pooler_bias.shape)}; expected [{hidden}]"
            )

    @property
    def prompt_len(self) -> int:
        return int(self.prompt.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.prompt.shape[1])


FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def as_float32(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Accept fp32/fp16/bf16 tensors; anything else is refused by name."""
    if tensor.dtype not in FLOAT_DTYPES:
        raise InvalidPrompt(
            f"tensor {name!r} has dtype {tensor.dtype}; expected float32/16 or bf16"
        )
    return tensor.detach().to(torch.float32).contiguous()


def _check_tensor(name: str, tensor: torch.Tensor, ndim: int) -> None:
    if tensor.dtype != torch.float32:
        raise InvalidPrompt(f"tensor {name!r} must be float32 here, got {tensor.dtype}")
    if tensor.ndim != ndim or tensor.numel() == 0:
        raise InvalidPrompt(
            f"tensor {name!r} has shape {list(tensor.shape)}; expected {ndim} non-empty dims"
        )
    if not torch.isfinite(tensor).all():
        raise InvalidPrompt(f"tensor {name!r} has non-finite values (NaN or Inf)")


def _check_labels(labels: tuple[str, ...], num_labels: int) -> None:
    if not labels:
        raise InvalidPrompt("missing labels: give the label names (one per head row)")
    if len(labels) != num_labels:
        raise InvalidPrompt(f"{len(labels)} labels given but the head has {num_labels} rows")
    if any(not isinstance(label, str) or not label.strip() for label in labels):
        raise InvalidPrompt("labels must be non-empty strings, not blank")
    if len(set(labels)) != len(labels):
        raise InvalidPrompt("labels must be distinct")
    for label in labels:
        _check_text("labels", label)


def _check_text(name: str, text: str) -> None:
    """Text that can be written as UTF-8: JSON's escapes can smuggle in lone surrogates
    ("\\udfff"), which no response, log or file could then carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPrompt(
            f"{name} hold(s) text that is not valid Unicode ({exc.reason} at {exc.start})"
        ) from None
