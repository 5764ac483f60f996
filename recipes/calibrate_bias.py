"""A binary task's decision threshold, chosen by cross-fitting on its training rows.

    python recipes/calibrate_bias.py --task spam --data ../shared/data \
        --file prompts/spam/v5.safetensors --out spam.safetensors --work DIR \
        [--folds 5] [--seed 0] [--jobs 2] [--min-gain 2] [--json OUT]

A trained head puts its boundary where the training loss did, which on an imbalanced task can
lean towards the common label. This recipe measures that lean on rows no model saw:

1. The training file is dealt into `--folds` folds, stratified by label (seeded), a repeated
   text's rows always in one fold.
2. For each fold, the file's own recorded training command (same flags and seed, one torch
   thread per job, `--jobs` at once) trains on the other folds.
3. Each fold's rows are scored as served (the engine, the serving precision): the margin
   logit(second label) - logit(first label).
4. `choose_delta` picks the shift of the second label's bias that maximises out-of-fold accuracy
   over the distinct texts, each counted once as the test and hidden splits count them (the
   optimal interval nearest 0, its midpoint); it must beat no shift by `--min-gain` texts.
   Every row's margin is kept in WORK/out-of-fold.jsonl.

When the shift passes, `--out` gets the file with its bias shifted and the calibration recorded
in its metrics (recipes/install.py registers it); otherwise nothing is written. Nothing here
reads the test split. spam's version 6 was made so (recipes/calibrate-cpu.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.atomic import write_atomic  # noqa: E402
from app.backbone import load_backbone  # noqa: E402
from app.engine import Engine  # noqa: E402
from app.prompt_file import decode, encode  # noqa: E402
from app.settings import DEFAULT_BACKBONE  # noqa: E402
from app.task import TaskSpec  # noqa: E402
from app.training.evaluate import served_features  # noqa: E402
from app.training.groups import first_rows, members, text_groups  # noqa: E402
from recipes.tasks import TASKS  # noqa: E402

FOLD, OUT = Path("FOLD.jsonl"), Path("OUT.safetensors")  # placeholders in the record


def deal_folds(
    labels: list[str],
    texts: list[str],
    folds: int,
    seed: int,
    groups: list[int] | None = None,
) -> list[int]:
    """Each row's fold: every label's distinct texts shuffled (seeded) and dealt round-robin, each
    text's rows with it (app.training.groups: a repeated text is never both seen and unseen).
    With no repeated text this is every label's rows shuffled and dealt. `groups` (one label's
    rows each, e.g. recipes/campaigns.campaign_groups) deals coarser groups the same way."""
    assignment = [0] * len(labels)
    groups = text_groups(texts) if groups is None else groups
    rows_of = members(groups)
    rng = random.Random(seed)
    for label in sorted(set(labels)):
        firsts = [rows[0] for rows in rows_of if labels[rows[0]] == label]  # a text's first row
        rng.shuffle(firsts)
        for position, first in enumerate(firsts):
            for row in rows_of[groups[first]]:
                assignment[row] = position % folds
    return assignment


def choose_delta(margins: list[float], positive: list[bool]) -> tuple[float, int, int]:
    """(delta, correct with it, correct with 0): predict positive iff margin + delta > 0.

    Accuracy only changes where -delta crosses a margin, so the candidates are the intervals
    between consecutive distinct margins; of those with the most correct rows, the one nearest
    0 wins, and delta is its midpoint (no row sits on the boundary)."""
    if not margins or len(margins) != len(positive):
        raise ValueError("need one label for each margin, and at least one")

    def correct(delta: float) -> int:
        return sum((m + delta > 0) == p for m, p in zip(margins, positive, strict=True))

    cuts = sorted(set(margins))
    edges = [cuts[0] - 1.0, *cuts, cuts[-1] + 1.0]
    # thresholds t = -delta strictly between two margins: midpoints of neighbouring edges
    candidates = [-(low + high) / 2 for low, high in zip(edges, edges[1:], strict=False)]
    scored = [(correct(delta), -abs(delta), delta) for delta in candidates]
    best, _, delta = max(scored)
    return delta, best, correct(0.0)


def fold_command(recorded: str, train: Path, out: Path) -> list[str]:
    """The version's recorded `promptserve train` command, on `train`, written to `out` only."""
    words = shlex.split(recorded)
    if words[:2] != ["promptserve", "train"]:
        raise ValueError(f"not a recorded training command: {recorded[:80]}")
    dropped = {"--train", "--out", "--eval", "--prompts-dir", "--upload", "--token", "--device"}
    kept, skip = [], False
    for word in words[2:]:
        if skip:
            skip = False
        elif word in dropped:
            skip = True
        elif word != "--no-progress":
            kept.append(word)
    return ["train", *kept, "--train", str(train), "--out", str(out), "--no-progress"]


def train_folds(args: argparse.Namespace, recorded: str, rows: list[str], fold: list[int]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(k: int) -> None:
        train = args.work / f"fold{k}-train.jsonl"
        train.write_text("".join(r for r, f in zip(rows, fold, strict=True) if f != k))
        out, done = args.work / f"fold{k}.safetensors", args.work / f"fold{k}.command"
        command = [sys.executable, "-m", "app.cli", *fold_command(recorded, train, out)]
        key = f"{shlex.join(command)}\n{hashlib.sha256(train.read_bytes()).hexdigest()}\n"
        if out.exists() and done.exists() and done.read_text() == key:
            return  # trained already, by this command on these rows
        with (args.work / f"fold{k}.log").open("w") as log:
            subprocess.run(command, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
        done.write_text(key)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, range(args.folds)))


def out_of_fold(
    work: Path, backbone: Any, spec: TaskSpec, records: list[dict[str, str]], fold: list[int]
) -> tuple[list[float], list[bool]]:
    """Every training row's margin under the fold model that did not see it, and its label."""
    engine = Engine(backbone)
    margins, positive = [0.0] * len(records), [False] * len(records)
    for k in sorted(set(fold)):
        fold_spec, _ = decode((work / f"fold{k}.safetensors").read_bytes(), backbone.identity)
        if fold_spec.labels != spec.labels:
            raise ValueError(f"fold {k} has labels {fold_spec.labels}, the task {spec.labels}")
        mine = [i for i, f in enumerate(fold) if f == k]
        scored = margins_of(engine, fold_spec, [records[i]["text"] for i in mine])
        for i, margin in zip(mine, scored, strict=True):
            margins[i], positive[i] = margin, records[i]["label"] == spec.labels[1]
    return margins, positive


def write_out_of_fold(
    path: Path, spec: TaskSpec, records: list[dict[str, str]], margins: list[float]
) -> None:
    """Each training row with its out-of-fold margin and the label it implies (unshifted), one
    JSON line each (bench/baselines/paired.py --ours-file reads them)."""
    lines = (
        json.dumps({**r, "predicted": spec.labels[int(m > 0)], "margin": m}) + "\n"
        for r, m in zip(records, margins, strict=True)
    )
    path.write_text("".join(lines), encoding="utf-8")


def margins_of(engine: Engine, spec: TaskSpec, texts: list[str]) -> list[float]:
    features = served_features(engine, spec, texts)  # fp32, as the engine pools them
    logits = features @ spec.head_weight.T + spec.head_bias  # what the engine's head computes
    return (logits[:, 1] - logits[:, 0]).tolist()


def add_fold_args(parser: argparse.ArgumentParser) -> None:
    """The options of a cross-fitting run: which task and file, the folds, where work goes."""
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--file", type=Path, required=True, help="the trained prompt file")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)


@dataclass(frozen=True)
class FoldRun:
    """A trained file's recorded command, its task's training rows and each row's fold."""

    spec: TaskSpec
    recorded: str
    rows: list[str]
    records: list[dict[str, str]]
    fold: list[int]

    @classmethod
    def start(cls, args: argparse.Namespace, backbone: Any) -> FoldRun:
        args.work.mkdir(parents=True, exist_ok=True)
        spec, metadata = decode(args.file.read_bytes(), backbone.identity)
        recorded = json.loads(metadata["metrics"])["training"]["command"]
        train_file = args.data / TASKS[args.task].dataset / "train.jsonl"
        rows = train_file.read_text().splitlines(keepends=True)
        records = [json.loads(row) for row in rows]
        labels, texts = [r["label"] for r in records], [r["text"] for r in records]
        fold = deal_folds(labels, texts, args.folds, args.seed)
        return cls(spec, recorded, rows, records, fold)

    def describe(self, args: argparse.Namespace) -> dict[str, Any]:
        return {
            "task": args.task,
            "from_file": args.file.name,
            "folds": args.folds,
            "seed": args.seed,
            "fold_command": shlex.join(["promptserve", *fold_command(self.recorded, FOLD, OUT)]),
            "rows": len(self.rows),
        }


def report(record: dict[str, Any], path: Path | None) -> None:
    """The run's record on stdout, and in `path` (`--json`) when given."""
    print(json.dumps(record, indent=1), flush=True)
    if path:
        path.write_text(json.dumps(record, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_fold_args(parser)
    parser.add_argument("--out", type=Path, required=True, help="the calibrated file")
    parser.add_argument("--min-gain", type=int, default=2, help="out-of-fold texts (default 2)")
    args = parser.parse_args()

    started = time.perf_counter()
    backbone = load_backbone(DEFAULT_BACKBONE)
    run = FoldRun.start(args, backbone)
    spec = run.spec
    if len(spec.labels) != 2:
        raise SystemExit(f"{args.task} has {len(spec.labels)} labels; this recipe is for two")
    train_folds(args, run.recorded, run.rows, run.fold)

    margins, positive = out_of_fold(args.work, backbone, spec, run.records, run.fold)
    write_out_of_fold(args.work / "out-of-fold.jsonl", spec, run.records, margins)
    # a text's rows share a fold and so a margin: count each distinct text once
    firsts = first_rows([r["text"] for r in run.records])
    delta, best, at_zero = choose_delta([margins[i] for i in firsts], [positive[i] for i in firsts])
    record: dict[str, Any] = {
        **run.describe(args),
        "distinct_texts": len(firsts),
        "delta": round(delta, 4),
        "out_of_fold_correct": best,
        "out_of_fold_correct_at_0": at_zero,
        "min_gain": args.min_gain,
        "seconds": round(time.perf_counter() - started, 1),
    }
    record["passes"] = best - at_zero >= args.min_gain
    report(record, args.json)
    if record["passes"]:
        shifted = spec.head_bias.clone()
        shifted[1] += delta
        calibrated = replace(
            spec, head_bias=shifted, metrics={**spec.metrics, "bias_calibration": record}
        )
        write_atomic(args.out, encode(calibrated, backbone.identity))
        print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
