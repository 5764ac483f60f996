"""Refit a task's head on its prompt's served features.

Prompt tuning trains the prompt and the head together, by SGD, and stops at the epoch that scored
best on one validation split. The head it ends with is rarely the best linear head for the prompt
it ends with. Here the prompt stays exactly as trained and the head is fitted again:

- every given row is embedded once through the serving engine (same tokenizer cut, precision and
  pooling the server uses);
- a multinomial logistic regression is fitted to those features, with its L2 penalty chosen by
  k-fold cross-validation over all the rows (a repeated text's rows in one fold), then fitted
  once on all of them.

No gradient goes through the backbone, so it takes a minute on a CPU. It also teaches an existing
task from more labelled rows without training its prompt again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import torch

from app.engine import Engine
from app.task import TaskSpec
from app.training import data
from app.training.evaluate import served_features
from app.training.groups import text_groups
from app.training.logreg import cross_validate_l2, fit


@dataclass(frozen=True)
class Refit:
    spec: TaskSpec  # the same prompt, pooling and labels, with the new head
    l2: float
    cv_accuracy: float  # each row scored by the fold fit that did not see it
    cv_scores: dict[str, float]  # every L2 tried -> its k-fold accuracy
    examples: int
    seconds: float

    def record(self, folds: int, seed: int) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "folds": folds,
            "seed": seed,
            "l2": self.l2,
            "cv_accuracy": round(self.cv_accuracy, 4),
            "cv_scores": {k: round(v, 4) for k, v in self.cv_scores.items()},
            "seconds": round(self.seconds, 1),
        }


def refit_head(
    engine: Engine, spec: TaskSpec, dataset: data.Dataset, folds: int = 5, seed: int = 0
) -> Refit:
    """The task with a head refitted on `dataset` (labels must be the task's, each one present)."""
    data.check_known_labels(dataset, spec.labels)
    missing = sorted(set(spec.labels) - set(dataset.labels))
    if missing:
        raise data.DataError(
            f"{dataset.path}: no rows for label(s) {', '.join(map(repr, missing))}; "
            "a refitted head could never predict them"
        )
    started = time.perf_counter()
    index = {label: i for i, label in enumerate(spec.labels)}
    targets = torch.tensor([index[label] for label in dataset.labels])
    features = served_features(engine, spec, dataset.texts)  # [rows, hidden]
    groups = text_groups(dataset.texts)
    l2, scores = cross_validate_l2(features, targets, len(spec.labels), folds, seed, groups)
    weight, bias = fit(features, targets, len(spec.labels), l2).folded()
    new_spec = replace(spec, head_weight=weight, head_bias=bias)
    seconds = time.perf_counter() - started
    return Refit(new_spec, l2, scores[f"{l2:.0e}"], scores, len(dataset), seconds)
