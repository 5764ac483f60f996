"""Trained head or refitted head? Out-of-fold accuracy of both, on a task's training rows.

    python recipes/crossfit_refit.py --task spam --data ../shared/data \
        --file prompts/spam/v7.safetensors --work DIR [--folds 5] [--seed 0] [--jobs 2] \
        [--json OUT]

A validation split at its ceiling (SMS spam's 391 rows: 100 % for every recent recipe) cannot
choose between two ways of making a task; all the training rows, each scored by a model that
did not see it, can. Here:

1. The training file is dealt into `--folds` folds, stratified by label (seeded), and the file's
   recorded training command trains one model on the other folds of each (as
   recipes/calibrate_bias.py does, whose helpers this reuses; its fold models are reused too).
2. Arm `trained`: each fold model as trained. Arm `refit`: the same prompt with its head fitted
   again by `promptserve refit-head` on that fold model's own training rows (the L2 penalty
   chosen by cross-validation inside them, `--folds` folds, `--seed`).
3. Every training row is scored as served (the engine, the serving precision) by both models of
   the fold that did not see it; the record counts the rows each arm gets right.

Nothing here reads the test split, and nothing is written but the work directory and `--json`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.backbone import load_backbone  # noqa: E402
from app.engine import Engine  # noqa: E402
from app.prompt_file import decode  # noqa: E402
from app.settings import DEFAULT_BACKBONE  # noqa: E402
from app.training.evaluate import served_features  # noqa: E402
from recipes.calibrate_bias import FoldRun, add_fold_args, report, train_folds  # noqa: E402


def refit_folds(args: argparse.Namespace) -> None:
    """`promptserve refit-head` on each fold model, with that fold's own training rows."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(k: int) -> None:
        out = args.work / f"fold{k}-refit.safetensors"
        if out.exists():
            return
        command = [
            *[sys.executable, "-m", "app.cli", "refit-head", "--task", args.task],
            *["--file", str(args.work / f"fold{k}.safetensors")],
            *["--data", str(args.work / f"fold{k}-train.jsonl")],
            *["--folds", str(args.folds), "--seed", str(args.seed), "--out", str(out)],
        ]
        with (args.work / f"fold{k}-refit.log").open("w") as log:
            subprocess.run(command, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, range(args.folds)))


def correct_out_of_fold(
    work: Path, suffix: str, backbone: Any, records: list[dict[str, str]], fold: list[int]
) -> int:
    """Rows that the fold models named fold{k}{suffix}.safetensors get right, on rows unseen."""
    engine, correct = Engine(backbone), 0
    for k in sorted(set(fold)):
        spec, _ = decode((work / f"fold{k}{suffix}.safetensors").read_bytes(), backbone.identity)
        mine = [records[i] for i, f in enumerate(fold) if f == k]
        features = served_features(engine, spec, [r["text"] for r in mine])
        predicted = (features @ spec.head_weight.T + spec.head_bias).argmax(-1).tolist()
        correct += sum(spec.labels[p] == r["label"] for p, r in zip(predicted, mine, strict=True))
    return correct


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_fold_args(parser)
    args = parser.parse_args()

    started = time.perf_counter()
    backbone = load_backbone(DEFAULT_BACKBONE)
    run = FoldRun.start(args, backbone)
    train_folds(args, run.recorded, run.rows, run.fold)
    refit_folds(args)
    records, fold = run.records, run.fold
    record = {
        **run.describe(args),
        "trained_correct": correct_out_of_fold(args.work, "", backbone, records, fold),
        "refit_correct": correct_out_of_fold(args.work, "-refit", backbone, records, fold),
        "seconds": round(time.perf_counter() - started, 1),
    }
    report(record, args.json)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
