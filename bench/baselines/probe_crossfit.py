"""The probe baseline cross-fitted on a task's training rows: how many it gets right unseen.

    python bench/baselines/probe_crossfit.py --tasks spam [--folds 5] [--precision bf16]
        [--predictions DIR]

Same folds as recipes/crossfit_epochs.py and recipes/crossfit_refit.py (stratified, seeded, a
repeated text's rows in one fold: recipes/calibrate_bias.deal_folds; with `--grouping campaign`,
a campaign's, as recipes/crossfit_sweep.py deals them for such a plan), so its count compares row
for row with theirs. In each fold the probe is made exactly as probe.py makes it on the whole
train split: L2 chosen on a seeded 10 % validation split of the fold's training rows (whole
texts), then fitted on all of them; it then scores the held-out fold. The embeddings are
computed once (they do not depend on the fold).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from probe import Embedder, write_predictions
from run_env import (
    add_common_args,
    backbone_path,
    choose_device,
    cpu_threads,
    device_name,
    write_results,
)
from task_data import load_task, parse_tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.training.groups import text_groups  # noqa: E402
from app.training.logreg import fit, select_l2  # noqa: E402
from recipes.calibrate_bias import deal_folds  # noqa: E402
from recipes.campaigns import GROUPINGS, grouping_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--grouping", choices=GROUPINGS, default="text", help="what one fold keeps together"
    )
    parser.add_argument(
        "--predictions", type=Path, help="write DIR/<task>.jsonl: out-of-fold labels"
    )
    args = parser.parse_args()
    device = choose_device(args.device)
    embedder = Embedder(backbone_path(args.backbone), device, args.precision, 0)
    results: dict[str, Any] = {
        "baseline": "logistic-regression probe, cross-fitted on the training rows",
        "folds": args.folds,
        "grouping": args.grouping,
        "seed": args.seed,
        "autocast": str(embedder.dtype) if embedder.dtype else "none (fp32)",
        "device_name": device_name(device),
        "tasks": {},
    }
    for name in parse_tasks(args.tasks):
        data = load_task(name, args.data_dir, args.limit, args.seed)
        train, names = data.train, data.labels
        features, targets = embedder(train.texts), torch.tensor(train.label_ids, device=device)
        labels = [names[i] for i in train.label_ids]
        kept = grouping_of(args.grouping, train.texts, labels)
        dealt = deal_folds(labels, train.texts, args.folds, args.seed, kept)
        fold = torch.tensor(dealt, device=device)
        correct, by_fold, predicted = 0, [], [0] * len(train.texts)
        for k in range(args.folds):
            seen, unseen = fold != k, fold == k
            with cpu_threads(device, 1):
                groups = text_groups([train.texts[i] for i in seen.nonzero().flatten().tolist()])
                l2, _ = select_l2(features[seen], targets[seen], len(names), args.seed, groups)
                model = fit(features[seen], targets[seen], len(names), l2)
            guesses = model.predict(features[unseen])
            for row, guess in zip(unseen.nonzero().flatten().tolist(), guesses, strict=True):
                predicted[row] = guess
            right = int((torch.tensor(guesses, device=device) == targets[unseen]).sum())
            print(f"{name} fold {k}: L2 {l2:.0e}, {right} of {int(unseen.sum())} right")
            correct += right
            by_fold.append({"l2": l2, "correct": right, "rows": int(unseen.sum())})
        print(f"{name}: {correct} of {len(train.texts)} training rows right out of fold")
        results["tasks"][name] = {"correct": correct, "rows": len(train.texts), "folds": by_fold}
        if args.predictions:
            path = args.predictions / f"{name}.jsonl"
            write_predictions(path, train.texts, train.label_ids, predicted, names)
        write_results(args.out, results)


if __name__ == "__main__":
    main()
