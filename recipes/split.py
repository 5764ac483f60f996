"""Carve a fixed validation split out of a training file (for early stopping and selection).

    python recipes/split.py TRAIN.jsonl OUT_DIR [--fraction 0.1] [--seed 0] [--by-row]

Writes OUT_DIR/train.jsonl and OUT_DIR/val.jsonl; the test split is never looked at. The split is
by distinct text, as the data's own test splits are: a text repeated in the file has all its rows
on one side (app.training.groups), so validation never scores a text that training saw. With no
repeated text it is the same split as shuffling the rows. `--by-row` shuffles the rows instead,
as every split did before commit 0c30815: it reproduces the files trained then (`sentiment`
version 2's; recipes/chosen.json says `"split": "rows"`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.training.groups import members, text_groups  # noqa: E402


def split(
    source: Path, out_dir: Path, fraction: float, seed: int, by_row: bool = False
) -> tuple[int, int]:
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    if by_row:
        groups = [[row] for row in range(len(lines))]
    else:
        groups = members(text_groups([json.loads(line)["text"] for line in lines]))
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(groups) * fraction))
    val = sorted(row for g in order[:cut] for row in groups[g])
    train = sorted(row for g in order[cut:] for row in groups[g])
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
    parser.add_argument("--by-row", action="store_true", help="rows, not texts (before 0c30815)")
    args = parser.parse_args()
    train, val = split(args.source, args.out_dir, args.fraction, args.seed, args.by_row)
    print(f"{args.out_dir}: {train} train, {val} validation")


if __name__ == "__main__":
    main()
