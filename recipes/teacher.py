"""Soft labels from a fine-tuned teacher, for distilling it into a prompt (`train --distill`).

    python recipes/teacher.py TRAIN.jsonl OUT.jsonl [--folds 1] [--epochs 3] [--lr 1e-4] [--seed 0]

Fine-tunes the whole default backbone (bench/baselines/full_finetune.py's fixed recipe) on
TRAIN's rows, then writes every row again with the teacher's probabilities, by label name, in
a `soft_label` field. With `--folds 1` one teacher scores the rows it was trained on (Hinton et
al. 2015's transfer set): they come out nearly one-hot. With `--folds K` (cross-fitting) the rows
are dealt into K folds (seeded) and each fold's soft labels come from a teacher fine-tuned on the
other K - 1: what the teacher believes about rows it has not memorised, at K times the cost.
A text's rows share a fold (app/training/groups.py), so no row's label comes from a teacher
that trained on the same text; `--by-row` deals rows instead, as this script did before (the
teacher file that question-type's version 4 was trained on). With no repeated text both give
the same folds.
The student softens them with its own temperature. `--eval FILE` (one teacher only) also
prints the teacher's accuracy on held-out rows (nothing is chosen with it).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "baselines"))

from full_finetune import Logits, fine_tune  # noqa: E402
from run_env import backbone_path, choose_device  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.training.groups import text_groups  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("train", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--backbone", default="default", help="model dir (default: MiniLM)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=1, help="cross-fitting folds (1: none)")
    parser.add_argument("--eval", type=Path, help="held-out JSONL to report accuracy on")
    parser.add_argument("--by-row", action="store_true", help="deal rows, not texts, into folds")
    args = parser.parse_args()
    if args.folds < 1 or (args.folds > 1 and args.eval):
        parser.error("--folds must be >= 1, and --eval needs --folds 1")
    rows = read_rows(args.train)
    units = len(rows) if args.by_row else len({str(row["text"]) for row in rows})
    if units < args.folds:
        what = "rows" if args.by_row else "distinct texts"
        parser.error(f"{args.train} has {units} {what}: fewer than --folds {args.folds}")
    args.backbone = backbone_path(args.backbone)
    args.device = choose_device(args.device)
    labels = sorted({str(row["label"]) for row in rows})
    texts = [str(row["text"]) for row in rows]
    label_ids = [labels.index(str(row["label"])) for row in rows]
    probs, logits, seconds = cross_fit(texts, label_ids, len(labels), args)
    agree = sum(
        max(range(len(labels)), key=p.__getitem__) == y
        for p, y in zip(probs, label_ids, strict=True)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        for row, p in zip(rows, probs, strict=True):
            soft = {label: float(f"{value:.6g}") for label, value in zip(labels, p, strict=True)}
            out.write(json.dumps({**row, "soft_label": soft}, ensure_ascii=False) + "\n")
    print(
        f"{args.out}: {len(rows)} rows, teacher trained in {seconds:.0f} s, "
        f"agrees with the gold label on {agree / len(rows):.2%} of them",
        flush=True,
    )
    if args.eval:
        held_out = read_rows(args.eval)
        predicted = logits([str(row["text"]) for row in held_out]).argmax(1).tolist()
        right = sum(
            labels[p] == str(row["label"]) for p, row in zip(predicted, held_out, strict=True)
        )
        print(f"teacher accuracy on {args.eval}: {right / len(held_out):.2%}", flush=True)


def cross_fit(
    texts: list[str], label_ids: list[int], n_labels: int, args: argparse.Namespace
) -> tuple[list[list[float]], Logits, float]:
    """Each row's probabilities from a teacher that did not train on it (all rows: --folds 1)."""
    fold_of = deal(texts, args.folds, args.seed, args.by_row)
    probs: list[list[float]] = [[] for _ in texts]
    seconds = 0.0
    for fold in range(args.folds):
        trained = [i for i in range(len(texts)) if fold_of[i] != fold or args.folds == 1]
        scored = [i for i in range(len(texts)) if fold_of[i] == fold]
        name = args.train.name if args.folds == 1 else f"{args.train.name} fold {fold}"
        logits, fold_seconds = fine_tune(
            [texts[i] for i in trained], [label_ids[i] for i in trained], n_labels, args, name
        )
        seconds += fold_seconds
        scored_probs = logits([texts[i] for i in scored]).double().softmax(1).tolist()
        for i, row_probs in zip(scored, scored_probs, strict=True):
            probs[i] = row_probs
    return probs, logits, seconds


def deal(texts: list[str], folds: int, seed: int, by_row: bool = False) -> list[int]:
    """Each row's fold: distinct texts (rows with `by_row`) dealt round-robin, then shuffled."""
    groups = list(range(len(texts))) if by_row else text_groups(texts)
    fold_of_group = [g % folds for g in range(max(groups, default=-1) + 1)]
    random.Random(seed).shuffle(fold_of_group)
    return [fold_of_group[g] for g in groups]


def read_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


if __name__ == "__main__":
    main()
