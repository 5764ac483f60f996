"""Residual reparameterisation of the soft prompt, for training only (Razdaibiedina et al. 2023,
"Residual Prompt Tuning").

Each prompt vector p goes through one bottleneck MLP shared by all of them, with a skip:
p' = p + LayerNorm(W_up ReLU(W_down p)). The shared MLP couples the vectors' updates, which the
paper found makes prompt tuning converge faster and less dependent on its learning rate. Only
P' is ever served: the task file holds the computed prompt, so serving does not change.

The LayerNorm's gain starts at the prompt's own RMS scale, so the residual branch starts with
the size of the vectors it is added to (a word embedding of this backbone has a norm near 1,
a LayerNorm output one near sqrt(hidden)).
"""

from __future__ import annotations

import torch
from torch import nn

REPARAMS = ("none", "residual")


class ResidualPrompt(nn.Module):
    def __init__(self, prompt: torch.Tensor, bottleneck: int) -> None:
        super().__init__()
        hidden = prompt.shape[1]
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        self.norm = nn.LayerNorm(hidden)
        scale = float(prompt.float().pow(2).mean().sqrt())
        nn.init.constant_(self.norm.weight, scale)

    def forward(self, prompt: torch.Tensor) -> torch.Tensor:
        """P' [m, hidden] from the raw prompt P [m, hidden]."""
        return prompt + self.norm(self.up(torch.relu(self.down(prompt))))


def build_reparam(kind: str, prompt: torch.Tensor, bottleneck: int) -> ResidualPrompt | None:
    """The reparameterisation named by `kind`; bottleneck 0 means half the hidden size."""
    if bottleneck < 0:
        raise ValueError(f"reparameterisation bottleneck {bottleneck}: give 0 (half) or more")
    if kind == "none":
        return None
    if kind == "residual":
        return ResidualPrompt(prompt, bottleneck or max(1, prompt.shape[1] // 2))
    raise ValueError(f"unknown prompt reparameterisation {kind!r}; choose one of {REPARAMS}")
