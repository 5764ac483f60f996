"""The training objective, with knowledge distillation (Hinton et al. 2015) as an option.

Without a teacher it is cross-entropy on the labels. With each row's `soft_label` (a teacher's
probabilities) and a weight w: (1 - w) * cross-entropy + w * T^2 * KL(teacher_T || task_T), both
distributions softened by temperature T.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from app.training.data import DataError, Dataset, check_soft_labels


def soft_targets(
    data: Dataset, labels: tuple[str, ...], weight: float, temperature: float
) -> torch.Tensor | None:
    """The teacher's probabilities, [rows, labels] in label order; None: no distilling. The
    weight (in [0, 1]) and temperature (> 0) are checked with the other options (config.py)."""
    if weight == 0:
        return None
    if data.soft_labels is None:
        raise DataError(
            f"{data.path}: distilling needs a 'soft_label' on every row "
            "(recipes/teacher.py writes them from a fine-tuned teacher)"
        )
    check_soft_labels(data, labels)
    return torch.tensor([[row.get(label, 0.0) for label in labels] for row in data.soft_labels])


def objective(
    logits: torch.Tensor,
    targets: torch.Tensor,
    soft: torch.Tensor | None,
    label_smoothing: float,
    weight: float,
    temperature: float,
) -> torch.Tensor:
    hard = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    if soft is None:
        return hard
    t = temperature
    teacher = F.log_softmax(soft.clamp_min(1e-12).log() / t, dim=-1)
    student = F.log_softmax(logits / t, dim=-1)
    kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return (1 - weight) * hard + weight * t * t * kl
