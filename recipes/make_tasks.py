"""Reproduce the shipped tasks: split, train the chosen configuration, score on test, register.

    python recipes/make_tasks.py --data ../shared/data --prompts-dir prompts [--tasks a,b]
                                 [--work WORK] [--device auto]

The configuration of each task (and its epoch scale) is the one the sweeps chose on validation
(recipes/chosen.json, from recipes/sweep-h100.json). A task with a `final` entry there is then
trained once more on every training row (the validation rows included, so no early stopping) for
the epochs the validation run kept, as its shipped version was; with `final.distill`, on a
fine-tuned teacher's cross-fitted soft labels for those rows as well (recipes/teacher.py); with
`final.calibrate`, its decision threshold is then shifted by cross-fitting
(recipes/calibrate_bias.py); with `final.refit`, its head is fitted again on every training row
(`promptserve refit-head`, the L2 penalty chosen by k-fold cross-validation). The validation split
is cut by distinct text (recipes/split.py), or by row where the entry says `"split": "rows"` (a
file trained on its split before that changed, as `sentiment` version 2). The same seed on
the same machine gives the same prompt; on another machine (CPU vs GPU) the figures can differ
slightly. On this project's 2-core CPU it takes hours (SST-2 alone is 60k examples x 4 epochs at
roughly 60-170 examples/s); on one H100 a few minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recipes.sweep import job_commands, prepare  # noqa: E402
from recipes.tasks import TASKS  # noqa: E402

CHOSEN = Path(__file__).with_name("chosen.json")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--prompts-dir", type=Path, default=Path("prompts"))
    parser.add_argument("--work", type=Path, default=Path("recipes/work"))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    chosen = json.loads(CHOSEN.read_text())
    files = []
    for task in args.tasks.split(","):
        options = argparse.Namespace(epochs_scale=chosen[task]["epochs_scale"], device=args.device)
        by_row = chosen[task].get("split") == "rows"  # a file trained before 0c30815
        paths = prepare(args.data, args.work, task, limit=None, by_row=by_row)
        config = chosen[task]["config"]
        train, evaluate, out = job_commands(task, config, paths, args.work, options)
        final = chosen[task].get("final")
        if final:
            every_row = args.data / TASKS[task].dataset / "train.jsonl"
            if "distill" in final:  # a fine-tuned teacher's soft labels train the prompt too
                teacher_file = args.work / task / "teacher.jsonl"
                every_row = teacher_labels(every_row, teacher_file, final["distill"])
            train = final_command(train, every_row, final)
        print("$", " ".join(train[2:]), flush=True)
        subprocess.run(train, check=True)
        if "calibrate" in (final or {}):
            calibrate(task, args, out, final["calibrate"])
        if "refit" in (final or {}):
            refit(task, args, out, final["refit"])
        subprocess.run([arg for arg in evaluate if arg != "--json"], check=True)  # a table
        files.append(str(out.with_name(f"{task}.safetensors")))
        Path(files[-1]).write_bytes(out.read_bytes())
    subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("install.py")),
            "--prompts-dir",
            str(args.prompts_dir),
            *files,
        ],
        check=True,
    )


def calibrate(task: str, args: argparse.Namespace, trained: Path, rule: dict[str, int]) -> None:
    """recipes/calibrate_bias.py on the trained file, in place: shifted only if the rule passes."""
    script = str(Path(__file__).with_name("calibrate_bias.py"))
    command = [sys.executable, script, "--task", task, "--data", str(args.data)]
    command += [
        "--file",
        str(trained),
        "--out",
        str(trained),
        "--work",
        str(args.work / task / "calibrate"),
    ]
    command += ["--folds", str(rule["folds"]), "--seed", str(rule["seed"])]
    subprocess.run([*command, "--min-gain", str(rule["min_gain"])], check=True)


def refit(task: str, args: argparse.Namespace, trained: Path, rule: dict[str, int]) -> None:
    """`promptserve refit-head` on the trained file with every training row; it replaces it."""
    every_row = args.data / TASKS[task].dataset / "train.jsonl"
    refitted = trained.with_name(f"{task}-refit.safetensors")
    command = ["promptserve", "refit-head", "--task", task, "--file", str(trained)]
    command += ["--data", str(every_row), "--folds", str(rule["folds"])]
    command += ["--seed", str(rule["seed"])]
    subprocess.run([*command, "--device", args.device, "--out", str(refitted)], check=True)
    trained.write_bytes(refitted.read_bytes())


def teacher_labels(train: Path, out: Path, distill: dict[str, Any]) -> Path:
    """recipes/teacher.py: soft labels for `train` from teachers fine-tuned on its other folds
    (folds of rows where the entry says `"split": "rows"`: a teacher file made before they were
    folds of texts)."""
    teacher = [sys.executable, str(Path(__file__).with_name("teacher.py")), str(train), str(out)]
    by_row = ["--by-row"] if distill.get("split") == "rows" else []
    subprocess.run([*teacher, "--folds", str(distill["folds"]), *by_row], check=True)
    return out


def final_command(train: list[str], every_row: Path, final: dict[str, Any]) -> list[str]:
    """The validation run's command on every row, for `final`'s epochs (and distillation)."""
    command = on_every_row(train, every_row, final["epochs"])
    if "distill" in final:
        command += ["--distill-weight", str(final["distill"]["weight"])]
        command += ["--distill-temperature", str(final["distill"]["temperature"])]
    return command


def on_every_row(train: list[str], every_row: Path, epochs: int) -> list[str]:
    """The same training command on the whole training file, for a fixed number of epochs."""
    replaced = {"--train": str(every_row), "--epochs": str(epochs)}
    command: list[str] = []
    args = iter(train)
    for arg in args:
        if arg in replaced:
            command += [arg, replaced[arg]]
            next(args)  # the value it replaces
        elif arg == "--eval":
            next(args)  # no validation split: every row trains
        else:
            command.append(arg)
    return command


if __name__ == "__main__":
    main()
