"""How many epochs? Out-of-fold accuracy after each epoch of a recorded recipe, on training rows.

    python recipes/crossfit_epochs.py --task spam --data ../shared/data \
        --file prompts/spam/v7.safetensors --epochs 6 --work DIR [--folds 5] [--seed 0] \
        [--jobs 2] [--json OUT]

A validation split at its ceiling picks the first epoch that reaches 100 %, which says little.
Here the training file is dealt into `--folds` folds (stratified, seeded: recipes/calibrate_bias),
and the file's recorded command trains on the other folds of each for `--epochs` epochs with the
held-out fold as its `--eval` file: the trainer scores it, as served, after the probe warm start
(epoch 0) and after every epoch. Summed over the folds, each epoch's count is the number of
training rows that a model trained that long got right without having seen them.

Nothing here reads the test split; nothing is written but the work directory and `--json`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.backbone import load_backbone  # noqa: E402
from app.settings import DEFAULT_BACKBONE  # noqa: E402
from recipes.calibrate_bias import FoldRun, add_fold_args, fold_command, report  # noqa: E402

# the trainer's log lines: "warm start: accuracy A ..." and "epoch N: loss ... accuracy A ..."
SCORED = re.compile(r"trainer: (?:warm start|epoch (\d+)):.*? accuracy ([0-9.]+)")


def epoch_accuracies(log: str) -> dict[int, float]:
    """{epoch: held-out accuracy} from a training log; the warm start is epoch 0."""
    return {int(m[1] or 0): float(m[2]) for m in SCORED.finditer(log)}


def train_fold(args: argparse.Namespace, run: FoldRun, k: int) -> dict[int, int]:
    """Fold k's held-out rows that the model gets right after each epoch."""
    train, held_out = args.work / f"fold{k}-train.jsonl", args.work / f"fold{k}-eval.jsonl"
    train.write_text("".join(r for r, f in zip(run.rows, run.fold, strict=True) if f != k))
    held_out.write_text("".join(r for r, f in zip(run.rows, run.fold, strict=True) if f == k))
    words = fold_command(run.recorded, train, args.work / f"fold{k}-epochs.safetensors")
    words = [*_without(words, "--epochs"), "--epochs", str(args.epochs), "--eval", str(held_out)]
    log_path = args.work / f"fold{k}-epochs.log"
    if not log_path.exists() or len(epoch_accuracies(log_path.read_text())) != args.epochs + 1:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with log_path.open("w") as log:
            command = [sys.executable, "-m", "app.cli", *words]
            subprocess.run(command, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    rows = run.fold.count(k)
    return {e: round(a * rows) for e, a in epoch_accuracies(log_path.read_text()).items()}


def _without(words: list[str], flag: str) -> list[str]:
    """`words` with `flag` and its value taken out."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == flag:
            skip = True
        else:
            out.append(word)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_fold_args(parser)
    parser.add_argument("--epochs", type=int, required=True, help="epochs to train and score")
    args = parser.parse_args()

    started = time.perf_counter()
    run = FoldRun.start(args, load_backbone(DEFAULT_BACKBONE))
    with ThreadPoolExecutor(args.jobs) as pool:
        by_fold = list(pool.map(lambda k: train_fold(args, run, k), range(args.folds)))
    correct = {e: sum(fold[e] for fold in by_fold) for e in range(args.epochs + 1)}
    record = {
        **run.describe(args),
        "epochs": args.epochs,
        "correct_by_epoch": correct,  # 0: the probe warm start
        "correct_by_fold": by_fold,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report(record, args.json)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
