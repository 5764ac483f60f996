"""The training configuration: every `promptserve train` option, checked before any work."""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.task import Pooling
from app.training.init import Init


@dataclass(frozen=True)
class TrainConfig:
    prompt_len: int = 20
    init: Init = "labels"
    init_text: str | None = None
    init_prompt: str | None = None  # a prompt file, for init "prompt"
    pooling: Pooling = "mean"
    epochs: int = 5
    # Prompt tuning wants a much larger rate than the head: the shipped recipes' rates.
    prompt_lr: float = 1e-2
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06  # fraction of all steps
    batch_size: int = 32
    max_length: int = 128  # tokens of text, special tokens included
    seed: int = 0
    patience: int = 0  # epochs without improvement before stopping; 0 = run every epoch
    precision: str = "auto"  # bf16 autocast where it is native, else fp32
    head_init: str = "probe"  # "probe": fit a logistic-regression head first; "zeros"
    probe_l2: float = 1e-4
    dropout: float = 0.0  # dropout inside the frozen backbone while training (a regularizer)
    label_smoothing: float = 0.0
    reparam: str = "none"  # "residual": train the prompt through a residual MLP (reparam.py)
    reparam_bottleneck: int = 0  # its hidden width; 0 = half the backbone's hidden size
    # Distillation (app/training/distill.py): the teacher's weight w and temperature T.
    distill_weight: float = 0.0
    distill_temperature: float = 2.0

    def __post_init__(self) -> None:
        """Numeric options checked before any work, each named by its flag."""
        # epochs 0: the probe warm start alone (a baseline, and what the tests compare with)
        at_least = {"epochs": 0, "batch_size": 1, "max_length": 2, "patience": 0}
        for name, least in at_least.items():
            if getattr(self, name) < least:
                raise ValueError(
                    f"{_flag(name)} must be at least {least}, not {getattr(self, name)}"
                )
        for name in ("prompt_lr", "head_lr", "weight_decay", "probe_l2"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):  # NaN fails too
                raise ValueError(f"{_flag(name)} must be a finite number, 0 or more, not {value}")
        for name in ("warmup", "dropout", "label_smoothing"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{_flag(name)} must be in [0, 1), not {getattr(self, name)}")
        if self.init_text is not None and self.init != "text":
            raise ValueError(f"--init-text needs --init text (the init is {self.init!r})")
        if not 0 <= self.distill_weight <= 1:  # NaN fails too
            raise ValueError(f"--distill-weight must be in [0, 1], not {self.distill_weight}")
        if not (self.distill_temperature > 0 and math.isfinite(self.distill_temperature)):
            raise ValueError(
                f"--distill-temperature must be a finite number above 0, not "
                f"{self.distill_temperature}"
            )
        if self.reparam_bottleneck < 0:
            raise ValueError("--reparam-bottleneck must be 0 (half the hidden size) or more")
        if self.init_prompt and self.init != "prompt":
            raise ValueError(f"--init-prompt needs --init prompt (the init is {self.init!r})")
        if self.init == "prompt" and not self.init_prompt:
            raise ValueError("--init prompt needs --init-prompt FILE (the prompt to start from)")
        if self.init_text is not None and not self.init_text.strip():
            raise ValueError("--init-text is blank: give the text the prompt starts from")
        if self.epochs == 0 and self.head_init == "zeros":
            raise ValueError(
                "--epochs 0 keeps the warm start, and --head-init zeros makes that an all-zero "
                "head (always the first label): give --epochs 1 or more, or --head-init probe"
            )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
