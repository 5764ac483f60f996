"""The optimiser: AdamW with separate learning rates for the prompt (with its reparameterisation,
if any; no weight decay) and the head, linear warm-up, then linear decay to zero at the end."""

from __future__ import annotations

import torch

from app.training.model import PromptClassifier


def build_optimizer(
    model: PromptClassifier,
    rates: tuple[float, float],  # (prompt, head)
    weight_decay: float,
    warmup_share: float,
    total_steps: int,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = torch.optim.AdamW(
        [
            {"params": model.prompt_parameters(), "lr": rates[0], "weight_decay": 0.0},
            {"params": model.head.parameters(), "lr": rates[1]},
        ],
        weight_decay=weight_decay,
    )
    warmup = max(1, int(warmup_share * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
