"""Accuracy and macro-F1 of predicted label ids against the true ones."""

from __future__ import annotations

import math
from collections.abc import Sequence


def accuracy(predicted: Sequence[int], true: Sequence[int]) -> float:
    if len(predicted) != len(true) or not true:
        raise ValueError(f"need equal, non-empty lists, got {len(predicted)} and {len(true)}")
    return sum(p == t for p, t in zip(predicted, true, strict=True)) / len(true)


def macro_f1(predicted: Sequence[int], true: Sequence[int]) -> float:
    """Mean per-label F1 over the labels that occur in either list (as scikit-learn averages)."""
    if len(predicted) != len(true) or not true:
        raise ValueError(f"need equal, non-empty lists, got {len(predicted)} and {len(true)}")
    f1s = []
    for label in sorted(set(predicted) | set(true)):
        tp = sum(p == label and t == label for p, t in zip(predicted, true, strict=True))
        fp = sum(p == label and t != label for p, t in zip(predicted, true, strict=True))
        fn = sum(p != label and t == label for p, t in zip(predicted, true, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: of the rows exactly one of two classifiers gets right,
    how surprising is a split at least this uneven if each were equally likely to be the one.
    (Twice the smaller binomial tail at 1/2, capped at 1.)"""
    n, k = only_first + only_second, min(only_first, only_second)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
