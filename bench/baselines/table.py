"""The baselines' results as a Markdown table (for the README), from the JSON files the runs wrote.

    python bench/baselines/table.py bench/baselines/results/probe.json \
        bench/baselines/results/peft_default.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from task_data import TASK_FILES


def cell(task: dict[str, Any] | None) -> str:
    if task is None:
        return "– | – | –"
    seconds = task.get("train_s", 0.0)
    epochs = f", {task['epochs']} ep" if "epochs" in task else ""
    return (
        f"{100 * task['accuracy']:.1f} % | {100 * task['macro_f1']:.1f} | {seconds:.1f} s{epochs}"
    )


def render(runs: list[dict[str, Any]]) -> str:
    header = "| task | data (eval split) |"
    rule = "| --- | --- |"
    for run in runs:
        header += f" {short_name(run)}: accuracy | macro-F1 | train time |"
        rule += " --- | --- | --- |"
    lines = [header, rule]
    for name, (folder, _, eval_file) in TASK_FILES.items():
        row = f"| {name} | {folder} ({Path(eval_file).stem}) |"
        for run in runs:
            row += f" {cell(run['tasks'].get(name))} |"
        lines.append(row)
    devices = sorted({run["device_name"] for run in runs})
    lines.append("")
    lines.append(f"Measured on: {'; '.join(devices)}.")
    limits = sorted({run["limit"] for run in runs if run.get("limit")})
    if limits:
        lines.append(f"Dry run: at most {limits} rows per split, not the full data.")
    return "\n".join(lines)


def short_name(run: dict[str, Any]) -> str:
    return "PEFT default" if run["baseline"].startswith("HF PEFT") else "logistic probe"


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    runs = []
    for path in map(Path, sys.argv[1:]):
        if path.is_file():
            runs.append(json.loads(path.read_text()))
        else:
            sys.stderr.write(f"{path}: missing, left out of the table\n")
    if not runs:
        raise SystemExit("no results to show")
    sys.stdout.write(render(runs) + "\n")


if __name__ == "__main__":
    main()
