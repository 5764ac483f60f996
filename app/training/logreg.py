"""Multinomial logistic regression with an L2 penalty, fitted full-batch with L-BFGS, and the choice
of the penalty on rows held out from the training rows (never the test split): one validation
split (`select_l2`) or k folds (`cross_validate_l2`). Rows that repeat a text are held out together
(app.training.groups)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from app.training.groups import group_folds, held_out_split

# L2 strengths tried: 1e-6 ... 1, half a decade apart (penalty on the mean loss: l2/2 * |W|^2)
L2_GRID = [10.0 ** (exponent / 2) for exponent in range(-12, 1)]


@dataclass
class LogisticModel:
    weight: torch.Tensor  # [labels, features]
    bias: torch.Tensor  # [labels]
    mean: torch.Tensor  # [features], the training features' mean
    scale: torch.Tensor  # [features], their standard deviation

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        standardized = (features - self.mean) / self.scale  # [n, features]
        return standardized @ self.weight.T + self.bias  # [n, labels]

    def predict(self, features: torch.Tensor) -> list[int]:
        return self.logits(features).argmax(dim=-1).tolist()

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The same classifier on raw features: (W [labels, features], b [labels]) with
        features @ W.T + b equal to `logits(features)`."""
        weight = self.weight / self.scale  # [labels, features]
        return weight, self.bias - weight @ self.mean


def fit(
    features: torch.Tensor,
    label_ids: torch.Tensor,
    num_labels: int,
    l2: float,
    max_iter: int = 300,
    start: LogisticModel | None = None,
) -> LogisticModel:
    """Minimise mean cross-entropy + l2/2 * |W|^2 (bias not penalised) on standardised features
    (not the probe warm start's convention: head_init.fit_probe).

    The objective is strictly convex, so `start` (a fit with a nearby L2) changes only how many
    iterations it takes, not the answer.
    """
    features = features.float()
    mean, scale = features.mean(dim=0), features.std(dim=0, correction=0).clamp(min=1e-6)
    standardized = (features - mean) / scale  # [n, features]
    if start is None:
        weight = torch.zeros(num_labels, features.shape[1], device=features.device)
        bias = torch.zeros(num_labels, device=features.device)
    else:
        weight, bias = start.weight.clone(), start.bias.clone()
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=10,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = standardized @ weight.T + bias  # [n, labels]
        loss = torch.nn.functional.cross_entropy(logits, label_ids)
        loss = loss + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LogisticModel(weight.detach(), bias.detach(), mean, scale)


def select_l2(
    features: torch.Tensor,
    label_ids: torch.Tensor,
    num_labels: int,
    seed: int,
    groups: list[int],
    val_fraction: float = 0.1,
) -> tuple[float, dict[str, float]]:
    """The grid's L2 with the best validation accuracy (ties: the stronger penalty), and all scores.
    `groups` is each row's text group (app.training.groups.text_groups): whole groups are held out.

    The grid is walked from the strongest penalty down, each fit starting from the previous one's
    solution: the weakly regularised fits, slow from zero, then take few iterations.
    """
    fit_rows, val_rows = held_out_split(groups, val_fraction, seed)
    fit_rows, val_rows = fit_rows.to(features.device), val_rows.to(features.device)
    scores: dict[str, float] = {}
    best_l2, best_accuracy = L2_GRID[-1], -1.0
    model = None
    for l2 in reversed(L2_GRID):  # strongest first, so a tie keeps the stronger penalty
        model = fit(features[fit_rows], label_ids[fit_rows], num_labels, l2, 100, start=model)
        predicted = torch.tensor(model.predict(features[val_rows]), device=features.device)
        accuracy = (predicted == label_ids[val_rows]).float().mean().item()
        scores[f"{l2:.0e}"] = accuracy
        if accuracy > best_accuracy:
            best_l2, best_accuracy = l2, accuracy
    return best_l2, scores


def cross_validate_l2(
    features: torch.Tensor,
    label_ids: torch.Tensor,
    num_labels: int,
    folds: int,
    seed: int,
    groups: list[int],
    grid: list[float] | None = None,
) -> tuple[float, dict[str, float]]:
    """The L2 with the best k-fold accuracy over all the rows (ties: the stronger penalty), and
    every L2's k-fold accuracy. Each row is scored once, by the fit that did not see it; `groups`
    (each row's text group) keeps a text's rows in one fold."""
    parts = [part.to(features.device) for part in group_folds(groups, folds, seed)]
    scores: dict[str, float] = {}
    best_l2, best_accuracy = -1.0, -1.0
    starts: list[LogisticModel | None] = [None] * folds
    for l2 in sorted(grid or L2_GRID, reverse=True):  # strongest first: a tie keeps it
        correct = 0
        for k, held in enumerate(parts):
            kept = torch.cat([part for j, part in enumerate(parts) if j != k])
            model = fit(features[kept], label_ids[kept], num_labels, l2, start=starts[k])
            starts[k] = model
            predicted = model.logits(features[held]).argmax(dim=-1)
            correct += int((predicted == label_ids[held]).sum())
        accuracy = scores[f"{l2:.0e}"] = correct / len(label_ids)
        if accuracy > best_accuracy:
            best_l2, best_accuracy = l2, accuracy
    return best_l2, scores
