"""The shipped tasks' last step: each head refitted on all of its task's training rows.

    python recipes/refit_heads.py --data ../shared/data --prompts-dir DIR [--tasks a,b]
                                  [--from-version 2] [--json recipes/refit-heads-cpu.json]

For each task, `promptserve refit-head` keeps the trained prompt of `--from-version` and fits its
head again on the whole training file (the validation split carved for prompt training
included), with the L2 penalty chosen by 5-fold cross-validation over those rows; the result is
registered as the task's next version and made active. The new version is then scored once on
the official held-out split, which chooses nothing. Minutes on a 2-core CPU (SST-2's 67k
training rows take longest).

Measured on the shipped tasks (recipes/refit-heads-cpu.json) and not shipped: against version 2 the
held-out accuracy moved by -0.6 to +1.0 point, within what the choice of folds alone moves it.
Give `--prompts-dir` a copy of prompts/ to measure without touching the shipped registry.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recipes.tasks import TASKS  # noqa: E402


def refit(task: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = TASKS[task]
    train = args.data / spec.dataset / "train.jsonl"
    held_out = args.data / spec.dataset / f"{spec.test_split}.jsonl"
    cli = [sys.executable, "-m", "app.cli"]
    where = ["--prompts-dir", str(args.prompts_dir), "--device", args.device]
    command = ["refit-head", "--task", task, "--version", str(args.from_version)]
    command += ["--data", str(train), "--register", *where]
    print("$ promptserve", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run([*cli, *command], check=True)
    seconds = time.perf_counter() - started
    scored = subprocess.run(
        [*cli, "eval", "--task", task, "--data", str(held_out), "--json", *where],
        check=True,
        capture_output=True,
        text=True,
    )
    scores = json.loads(scored.stdout)
    version = int(scores["version"])
    stored = args.prompts_dir / task / f"v{version}.safetensors"
    with safe_open(str(stored), "pt") as file:
        record = json.loads(file.metadata()["metrics"])["head_refit"]
    print(f"{task}: version {version}, held-out accuracy {scores['accuracy']:.4f}", flush=True)
    return {
        "task": task,
        "of_version": record["of_version"],
        "version": version,
        "command": record["command"],
        "l2": record["l2"],
        "cv_accuracy": record["cv_accuracy"],
        "examples": record["examples"],
        "seconds": round(seconds, 1),
        "held_out_split": spec.test_split,
        "test_accuracy": round(scores["accuracy"], 4),
        "test_macro_f1": round(scores["macro_f1"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--prompts-dir", type=Path, required=True, help="registry to refit in")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--from-version", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, help="write every task's record here")
    args = parser.parse_args()
    records = [refit(task, args) for task in args.tasks.split(",")]
    if args.json:
        machine = "this project's 2-vCPU build machine" if args.device != "cuda" else args.device
        payload = {"machine": machine, "date": time.strftime("%Y-%m-%d"), "jobs": records}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
