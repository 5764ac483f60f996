"""Train every shipped task under each configuration of the grid, in parallel processes.

    python recipes/sweep.py --data ../shared/data --work WORK [--jobs 10] [--deadline-s 330]
                            [--tasks sentiment,...] [--configs m20-lr3e-2,...] [--limit N]

Per task: carve a validation split from train (recipes/split.py), train each configuration
(early stopping and selection on validation only), score the best epoch on the official test
split, and pick the configuration with the best validation accuracy (ties: best validation
macro-F1, then the earlier job). Writes WORK/results.json and WORK/chosen/<task>.safetensors.
On a GPU, several processes share it: each is bound by kernel launches, so they overlap well.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recipes.split import split  # noqa: E402
from recipes.tasks import COMMON, GRID, TASKS  # noqa: E402


def prepare(
    data_root: Path, work: Path, task: str, limit: int | None, by_row: bool = False
) -> dict[str, Path]:
    spec = TASKS[task]
    out = work / task / "data"
    split(data_root / spec.dataset / "train.jsonl", out, fraction=0.1, seed=0, by_row=by_row)
    test = data_root / spec.dataset / f"{spec.test_split}.jsonl"
    paths = {"train": out / "train.jsonl", "val": out / "val.jsonl", "test": test}
    if limit:
        for name in ("train", "val", "test"):
            lines = paths[name].read_text().splitlines()[:limit]
            paths[name] = out / f"{name}.limit.jsonl"
            paths[name].write_text("\n".join(lines) + "\n")
    return paths


def flags(common: list[str], config: list[str]) -> list[str]:
    """COMMON's flag-value pairs with the configuration's after them; a flag in both takes the
    configuration's value, once (so the recorded command names each option once)."""
    pairs = dict(zip(common[::2], common[1::2], strict=True))
    pairs.update(zip(config[::2], config[1::2], strict=True))
    return [item for pair in pairs.items() for item in pair]


def job_commands(
    task: str, config: str, paths: dict[str, Path], work: Path, args: argparse.Namespace
) -> tuple[list[str], list[str], Path]:
    spec = TASKS[task]
    out = work / task / f"{config}.safetensors"
    epochs = max(1, round(spec.epochs * args.epochs_scale))
    python = [sys.executable, "-m", "app.cli"]
    train = [
        *python,
        "train",
        "--task",
        task,
        "--train",
        str(paths["train"]),
        "--eval",
        str(paths["val"]),
        "--epochs",
        str(epochs),
        *flags(COMMON, GRID[config]),
        "--description",
        spec.description,
        "--out",
        str(out),
        "--no-progress",
        "--device",
        args.device,
    ]
    evaluate = [
        *python,
        "eval",
        "--task",
        task,
        "--file",
        str(out),
        "--data",
        str(paths["test"]),
        "--json",
        "--device",
        args.device,
    ]
    return train, evaluate, out


def run_job(
    task: str, config: str, commands: tuple[list[str], list[str], Path], work: Path, deadline: float
) -> dict[str, Any]:
    train, evaluate, out = commands
    log = work / task / f"{config}.log"
    record: dict[str, Any] = {"task": task, "config": config, "command": " ".join(train[2:])}
    started = time.monotonic()
    record["status"] = "ok"
    with log.open("w") as file:
        try:
            subprocess.run(
                train,
                stdout=file,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=max(1, deadline - time.monotonic()),
            )
        except subprocess.TimeoutExpired:
            record["status"] = "stopped at the deadline: best epoch so far"
        except subprocess.CalledProcessError as exc:
            record["status"] = f"failed: exit {exc.returncode}"
            return record
    if not out.exists():
        record["status"] = "no epoch finished before the deadline"
        return record
    try:
        scored = subprocess.run(evaluate, capture_output=True, text=True, check=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        record["status"] = f"test scoring failed: {type(exc).__name__}"
        return record
    from safetensors import safe_open

    with safe_open(str(out), "pt") as handle:
        metrics = json.loads(handle.metadata()["metrics"])
    test = json.loads(scored.stdout)
    record.update(
        status="ok",
        seconds=round(time.monotonic() - started, 1),
        val_accuracy=metrics["eval"]["accuracy"],
        val_macro_f1=metrics["eval"]["macro_f1"],
        test_accuracy=round(test["accuracy"], 4),
        test_macro_f1=round(test["macro_f1"], 4),
        best_epoch=metrics["training"]["best_epoch"],
        train_seconds=metrics["training"]["seconds"],
        examples_per_s=metrics["training"]["examples_per_s"],
        device=metrics["training"]["device"],
        file=str(out),
    )
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--deadline-s", type=float, default=330)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--configs", default=",".join(GRID))
    parser.add_argument("--limit", type=int, help="dry run: first N rows of each split")
    parser.add_argument("--epochs-scale", type=float, default=1.0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline_s
    tasks, configs = args.tasks.split(","), args.configs.split(",")
    jobs = []
    for task in tasks:
        paths = prepare(args.data, args.work, task, args.limit)
        jobs += [
            (task, config, job_commands(task, config, paths, args.work, args)) for config in configs
        ]
    with ThreadPoolExecutor(args.jobs) as pool:  # the biggest task's jobs were queued first
        records = list(
            pool.map(lambda job: run_job(job[0], job[1], job[2], args.work, deadline), jobs)
        )
    chosen = choose(records, args.work)
    (args.work / "results.json").write_text(
        json.dumps({"jobs": records, "chosen": chosen}, indent=2)
    )
    for record in records:
        print(json.dumps(record))
    print("chosen:", json.dumps(chosen, indent=2))


def choose(records: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    """Per task, the best validation accuracy; ties go to the best validation macro-F1, then to
    the earlier job. Copies each chosen file to WORK/chosen/<task>.safetensors."""
    chosen: dict[str, Any] = {}
    (work / "chosen").mkdir(parents=True, exist_ok=True)
    for record in records:
        if "val_accuracy" not in record:
            continue
        best = chosen.get(record["task"])
        if best is None or _validation_key(record) > _validation_key(best):
            chosen[record["task"]] = record
    for task, record in chosen.items():
        (work / "chosen" / f"{task}.safetensors").write_bytes(Path(record["file"]).read_bytes())
    return chosen


def _validation_key(record: dict[str, Any]) -> tuple[float, float]:
    return record["val_accuracy"], record["val_macro_f1"]


if __name__ == "__main__":
    main()
