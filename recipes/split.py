"""Carve a fixed validation split out of a training file (for early stopping and selection).

    python recipes/split.py TRAIN.jsonl OUT_DIR [--fraction 0.1] [--seed 0]

Writes OUT_DIR/train.jsonl and OUT_DIR/val.jsonl; the test split is never looked at.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def split(source: Path, out_dir: Path, fraction: float, seed: int) -> tuple[int, int]:
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(lines) * fraction))
    val, train = sorted(order[:cut]), sorted(order[cut:])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train.jsonl").write_text("".join(lines[i] + "\n" for i in train), "utf-8")
    (out_dir / "val.jsonl").write_text("".join(lines[i] + "\n" for i in val), "utf-8")
    return len(train), len(val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, val = split(args.source, args.out_dir, args.fraction, args.seed)
    print(f"{args.out_dir}: {train} train, {val} validation")


if __name__ == "__main__":
    main()
