"""Soft labels from a fine-tuned teacher, for distilling it into a prompt (`train --distill`).

    python recipes/teacher.py TRAIN.jsonl OUT.jsonl [--epochs 3] [--lr 1e-4] [--seed 0]

Fine-tunes the whole default backbone (bench/baselines/full_finetune.py's fixed recipe) on
TRAIN's rows, then writes every row again with the teacher's probabilities, by label name, in
a `soft_label` field. The teacher scores the rows it was trained on (Hinton et al. 2015's
transfer set); the student softens them with its own temperature. `--eval FILE` also prints
the teacher's accuracy on held-out rows (nothing is chosen with it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "baselines"))

from full_finetune import fine_tune  # noqa: E402
from run_env import backbone_path, choose_device  # noqa: E402


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
    parser.add_argument("--eval", type=Path, help="held-out JSONL to report accuracy on")
    args = parser.parse_args()
    args.backbone = backbone_path(args.backbone)
    args.device = choose_device(args.device)
    rows = read_rows(args.train)
    labels = sorted({str(row["label"]) for row in rows})
    texts = [str(row["text"]) for row in rows]
    label_ids = [labels.index(str(row["label"])) for row in rows]
    logits, seconds = fine_tune(texts, label_ids, len(labels), args, args.train.name)
    probs = logits(texts).double().softmax(1).tolist()
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


def read_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


if __name__ == "__main__":
    main()
