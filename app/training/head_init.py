"""Warm start for the head: a logistic-regression probe on the prompted model's pooled outputs.

Training then starts from the probe's accuracy instead of chance, so the prompt's epochs go
into improving on it. One forward pass over the training set, no gradients through the model.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from app.training.model import PromptClassifier, pad_batch

PROBE_STEPS = 200


@torch.no_grad()
def pooled_features(
    model: PromptClassifier,
    ids: list[list[int]],
    batch_size: int,
    amp: torch.dtype | None,
) -> torch.Tensor:
    """[examples, hidden] fp32 pooled outputs under the current prompt, in input order."""
    device = model.prompt.device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    features = torch.empty(len(ids), model.prompt.shape[1], device=device)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        padded, lengths = pad_batch(ids, chunk, model.pad_id)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            pooled = model.pooled(padded.to(device), lengths.to(device))
        features[torch.tensor(chunk, device=device)] = pooled.float()
    return features


def fit_probe(
    features: torch.Tensor, targets: torch.Tensor, num_labels: int, l2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression with an L2 penalty, full batch L-BFGS: (W [L, d], b [L]).

    Its penalty is `l2 * |W|^2` on the raw features (`--probe-l2`); refit-head's (logreg.fit) is
    `l2 / 2 * |W|^2` on standardised ones, so the two l2 values are not comparable. Kept apart:
    the shipped recipes' --probe-l2 values were chosen for this one."""
    features = features.float()
    targets = targets.to(features.device)
    weight = torch.zeros(num_labels, features.shape[1], device=features.device, requires_grad=True)
    bias = torch.zeros(num_labels, device=features.device, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], max_iter=PROBE_STEPS, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(features @ weight.T + bias, targets) + l2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()
