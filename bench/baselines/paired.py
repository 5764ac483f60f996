"""A task against the probe baseline on the same held-out rows, row by row.

    python bench/baselines/probe.py --tasks all --precision bf16 --predictions DIR --out F
    python bench/baselines/paired.py --probe-dir DIR [--tasks spam,intent] [--prompts-dir prompts]
        [--file F (one task)] [--json OUT]

Accuracy alone says how many rows each gets right; a paired count says on which. Of the rows
exactly one of the two gets right, an exact McNemar test asks how likely a split at least this
uneven is if neither were better: a gap of a few rows out of a thousand is often a coin's toss.
Our task is scored as served (the serving engine and its precision, predict_local).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="all", help="'all' or comma-separated task names")
    parser.add_argument("--probe-dir", type=Path, required=True, help="probe.py --predictions DIR")
    parser.add_argument("--prompts-dir", type=Path, default=Path("prompts"))
    parser.add_argument("--file", type=Path, help="one task only: score this prompt file instead")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args()
    tasks = parse_tasks(args.tasks)
    if args.file and len(tasks) != 1:
        parser.error("--file scores one task: name it with --tasks")
    backbone = load_backbone(DEFAULT_BACKBONE)
    registry = Registry(args.prompts_dir, backbone.identity)
    registry.load()
    engine = Engine(backbone)
    record: dict[str, Any] = {"probe_dir": str(args.probe_dir), "tasks": {}}
    for task in tasks:
        rows = [json.loads(line) for line in (args.probe_dir / f"{task}.jsonl").open()]
        if args.file:
            spec, version = decode(args.file.read_bytes(), backbone.identity)[0], str(args.file)
        else:
            version = registry.resolve(task).version
            spec = registry.read_spec(task, version)
        ours = predict_local(engine, spec, [r["text"] for r in rows])
        truth, probe = [r["label"] for r in rows], [r["predicted"] for r in rows]
        record["tasks"][task] = {"version": version, **paired_counts(truth, ours, probe)}
        print(task, json.dumps(record["tasks"][task]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
