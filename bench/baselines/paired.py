"""A task against the probe baseline on the same held-out rows, row by row.

    python bench/baselines/probe.py --tasks all --precision bf16 --predictions DIR --out F
    python bench/baselines/paired.py --probe-dir DIR [--tasks spam,intent] [--prompts-dir prompts]
        [--file F | --ours-file ROWS (one task)] [--distinct] [--json OUT]

Accuracy alone says how many rows each gets right; a paired count says on which. Of the rows
exactly one of the two gets right, an exact McNemar test asks how likely a split at least this
uneven is if neither were better: a gap of a few rows out of a thousand is often a coin's toss.
Our task is scored as served (the serving engine and its precision, predict_local), or its
labels come from `--ours-file` (rows of text, label, predicted: recipes/calibrate_bias.py's
out-of-fold file, with the probe's from probe_crossfit.py --predictions). `--distinct` counts
each distinct text once, as the data's test and hidden splits do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scoring import mcnemar_exact
from task_data import parse_tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.backbone import load_backbone  # noqa: E402
from app.engine import Engine  # noqa: E402
from app.prompt_file import decode  # noqa: E402
from app.registry import Registry  # noqa: E402
from app.settings import DEFAULT_BACKBONE  # noqa: E402
from app.training.evaluate import predict_local  # noqa: E402
from app.training.groups import first_rows  # noqa: E402


def paired_counts(truth: list[str], ours: list[str], probe: list[str]) -> dict[str, Any]:
    """Rows both get right, only ours, only the probe, neither; and McNemar's exact p."""
    cells = {"both_right": 0, "only_ours_right": 0, "only_probe_right": 0, "both_wrong": 0}
    for label, mine, theirs in zip(truth, ours, probe, strict=True):
        key = {
            (True, True): "both_right",
            (True, False): "only_ours_right",
            (False, True): "only_probe_right",
            (False, False): "both_wrong",
        }[(mine == label, theirs == label)]
        cells[key] += 1
    rows = len(truth)
    return {
        "rows": rows,
        "ours_accuracy": (cells["both_right"] + cells["only_ours_right"]) / rows,
        "probe_accuracy": (cells["both_right"] + cells["only_probe_right"]) / rows,
        **cells,
        "mcnemar_exact_p": mcnemar_exact(cells["only_ours_right"], cells["only_probe_right"]),
    }


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def first_of_each_text(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per distinct text (its first), as the data's test and hidden splits count them."""
    return [rows[i] for i in first_rows([r["text"] for r in rows])]


class Scorer:
    """Our task's labels for a list of texts, as served; the backbone loaded on first use."""

    def __init__(self, prompts_dir: Path) -> None:
        self.prompts_dir, self.engine, self.registry = prompts_dir, None, None

    def __call__(self, task: str, file: Path | None, texts: list[str]) -> tuple[Any, list[str]]:
        if self.engine is None:
            backbone = load_backbone(DEFAULT_BACKBONE)
            self.registry = Registry(self.prompts_dir, backbone.identity)
            self.registry.load()
            self.engine = Engine(backbone)
        identity = self.engine.backbone.identity
        if file:
            spec, version = decode(file.read_bytes(), identity)[0], str(file)
        else:
            version = self.registry.resolve(task).version
            spec = self.registry.read_spec(task, version)
        return version, predict_local(self.engine, spec, texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="all", help="'all' or comma-separated task names")
    parser.add_argument("--probe-dir", type=Path, required=True, help="probe.py --predictions DIR")
    parser.add_argument("--prompts-dir", type=Path, default=Path("prompts"))
    parser.add_argument("--file", type=Path, help="one task only: score this prompt file instead")
    parser.add_argument("--ours-file", type=Path, help="one task only: our labels from this file")
    parser.add_argument("--distinct", action="store_true", help="count each distinct text once")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args()
    tasks = parse_tasks(args.tasks)
    if (args.file or args.ours_file) and len(tasks) != 1:
        parser.error("--file and --ours-file are for one task: name it with --tasks")
    score = Scorer(args.prompts_dir)
    record: dict[str, Any] = {"probe_dir": str(args.probe_dir), "tasks": {}}
    for task in tasks:
        rows = read_rows(args.probe_dir / f"{task}.jsonl")
        if args.ours_file:
            mine = read_rows(args.ours_file)
            if [r["text"] for r in mine] != [r["text"] for r in rows]:
                raise SystemExit(f"{args.ours_file} and the probe's file hold different texts")
            version, ours = str(args.ours_file), [r["predicted"] for r in mine]
        else:
            version, ours = score(task, args.file, [r["text"] for r in rows])
        both = [{**r, "ours": o} for r, o in zip(rows, ours, strict=True)]
        if args.distinct:
            both = first_of_each_text(both)
        truth, probe = [r["label"] for r in both], [r["predicted"] for r in both]
        counts = paired_counts(truth, [r["ours"] for r in both], probe)
        record["tasks"][task] = {"version": version, "distinct": args.distinct, **counts}
        print(task, json.dumps(record["tasks"][task]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
