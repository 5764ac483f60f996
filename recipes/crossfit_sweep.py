"""Which recipe? Variants of a recorded recipe compared out of fold, on whole texts, by a rule.

    python recipes/crossfit_sweep.py --plan recipes/crossfit-sweep-h100.json --data ../shared/data \
        --work DIR [--jobs 14] [--deadline-s 300] [--confirm-deadline-s 150] [--json OUT]

A validation split at its ceiling (SMS spam's: 99.5 to 100 % for every configuration) cannot tell
recipes apart. Here the plan (JSON, fixed before any run) names the task, the prompt file whose
recorded command is the baseline, and variants: flags that replace or join that command.

1. Select: the training file is dealt into folds (recipes/calibrate_bias.deal_folds: stratified,
   a repeated text's rows in one fold; with the plan's `"grouping": "campaign"`, a campaign's
   texts in one fold, recipes/campaigns.py) with the plan's `select_seed`. Every variant trains
   on the other folds of each for `max_epochs`, its held-out fold's distinct texts (each once, as
   the test and hidden splits count them) as `--eval`: the trainer scores them as served after
   every epoch.
   A variant's score is its best epoch's count of held-out texts right, summed over the folds.
2. The rule: the best candidate must beat every `noise` variant (the baseline's recipe with other
   training seeds, the baseline itself among them) by `min_lead` texts, and every count in the
   plan's optional `floor` (noise variants' counts from an earlier run on the same folds).
3. Confirm: on folds dealt with `confirm_seed` (never used to choose), the winner at its best
   epoch count and the baseline as recorded train again; the winner passes if it gets `min_gain`
   more texts right (each at its last epoch, as a training run on every row would ship).

Jobs run `--jobs` at once, one torch thread each, until a deadline: a variant with a fold missing
is reported and not scored. Nothing here reads the test split; nothing ships from it by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.training.groups import first_rows  # noqa: E402
from recipes.calibrate_bias import deal_folds, fold_command, report  # noqa: E402
from recipes.campaigns import grouping_of  # noqa: E402
from recipes.crossfit_epochs import _without, epoch_accuracies  # noqa: E402
from recipes.tasks import TASKS  # noqa: E402


@dataclass(frozen=True)
class Job:
    variant: str
    fold: int
    words: list[str]  # the `app.cli` arguments
    log: Path
    epochs: int
    held_out: int  # distinct texts scored


def with_flags(words: list[str], flags: dict[str, str]) -> list[str]:
    """`words` with each flag's value replaced (or the flag added)."""
    for flag, value in flags.items():
        words = [*_without(words, flag), flag, str(value)]
    return words


def recorded_command(path: Path) -> str:
    """The training command a prompt file records (read without loading a backbone)."""
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata() or {}
    return str(json.loads(metadata["metrics"])["training"]["command"])


def epochs_of(words: list[str]) -> int:
    """The `--epochs` value of a command's words."""
    return int(words[words.index("--epochs") + 1])


def write_folds(
    work: Path, rows: list[str], seed: int, folds: int, grouping: str = "text"
) -> list[int]:
    """fold{k}-train.jsonl (every row of the other folds) and fold{k}-eval.jsonl (fold k's
    distinct texts, each once) under `work`; returns each fold's count of distinct texts.
    `grouping` "campaign" keeps a campaign's texts in one fold (recipes/campaigns.py)."""
    work.mkdir(parents=True, exist_ok=True)
    records = [json.loads(row) for row in rows]
    texts, labels = [r["text"] for r in records], [r["label"] for r in records]
    fold = deal_folds(labels, texts, folds, seed, grouping_of(grouping, texts, labels))
    firsts = first_rows(texts)  # a text's rows share its fold: its first row stands for it
    sizes = []
    for k in range(folds):
        (work / f"fold{k}-train.jsonl").write_text(
            "".join(row for row, f in zip(rows, fold, strict=True) if f != k)
        )
        held = [rows[i] for i in firsts if fold[i] == k]
        (work / f"fold{k}-eval.jsonl").write_text("".join(held))
        sizes.append(len(held))
    return sizes


def plan_grouping(plan: dict[str, Any]) -> str:
    """How the plan's folds keep rows together: "text" (the default) or "campaign"."""
    return str(plan.get("grouping", "text"))


def make_jobs(
    work: Path, base: list[str], variants: dict[str, dict[str, str]], sizes: list[int]
) -> list[Job]:
    """One job per variant and fold, variant by variant in the plan's order."""
    jobs = []
    for name, flags in variants.items():
        for k, size in enumerate(sizes):
            paths = {
                "--train": str(work / f"fold{k}-train.jsonl"),
                "--out": str(work / f"{name}-fold{k}.safetensors"),
                "--eval": str(work / f"fold{k}-eval.jsonl"),
            }
            words = with_flags(base, {**flags, **paths})
            jobs.append(Job(name, k, words, work / f"{name}-fold{k}.log", epochs_of(words), size))
    return jobs


def run_jobs(jobs: list[Job], parallel: int, deadline: float) -> dict[tuple[str, int], dict]:
    """Each finished job's {epoch: held-out texts right}; a job not done by `deadline` (a
    `time.monotonic()` value) is left out. A log already complete is read, not rerun."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(job: Job) -> dict[int, int] | None:
        scored = _scored(job)
        if scored is None:
            left = deadline - time.monotonic()
            if left < 1:
                return None
            command = [sys.executable, "-m", "app.cli", *job.words]
            with job.log.open("w") as log:
                try:
                    subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   timeout=left, check=False)  # fmt: skip
                except subprocess.TimeoutExpired:
                    return None
            scored = _scored(job)
        return scored

    with ThreadPoolExecutor(parallel) as pool:
        done = list(pool.map(one, jobs))
    return {(j.variant, j.fold): d for j, d in zip(jobs, done, strict=True) if d is not None}


def _scored(job: Job) -> dict[int, int] | None:
    """{epoch: held-out texts right} from a complete log (warm start and every epoch), else None."""
    if not job.log.exists():
        return None
    scored = epoch_accuracies(job.log.read_text())
    if len(scored) != job.epochs + 1:
        return None
    return {e: round(a * job.held_out) for e, a in scored.items()}


def totals(done: dict[tuple[str, int], dict], variant: str, folds: int) -> dict[int, int] | None:
    """{epoch: held-out texts right over all folds} (epochs 1 on), or None if a fold is missing."""
    counts = [done.get((variant, k)) for k in range(folds)]
    if any(c is None for c in counts):
        return None
    epochs = set.intersection(*(set(c) for c in counts if c is not None)) - {0}
    return {e: sum(c[e] for c in counts if c is not None) for e in sorted(epochs)}


def best_epoch(by_epoch: dict[int, int]) -> tuple[int, int]:
    """(epoch, count): the most texts right; the fewest epochs among ties."""
    epoch = max(by_epoch, key=lambda e: (by_epoch[e], -e))
    return epoch, by_epoch[epoch]


def choose(
    scores: dict[str, tuple[int, int] | None],
    noise: list[str],
    min_lead: int,
    measured: dict[str, int] | None = None,
) -> dict:
    """The rule's step 2: the best candidate, and whether it beats every noise variant (and
    every count in `measured`: a plan's `floor`, noise counts from an earlier run)."""
    candidates = {n: s for n, s in scores.items() if n not in noise and s is not None}
    floor = [s[1] for n, s in scores.items() if n in noise and s is not None]
    if not candidates or len(floor) != len(noise):
        return {
            "winner": None,
            "passes": False,
            "why": "a noise variant or every candidate missing",
        }
    winner = max(candidates, key=lambda n: (candidates[n][1], -candidates[n][0]))
    lead = candidates[winner][1] - max([*floor, *(measured or {}).values()])
    return {"winner": winner, "epochs": candidates[winner][0], "lead": lead,
            "passes": lead >= min_lead}  # fmt: skip


def confirm(
    args: argparse.Namespace,
    plan: dict[str, Any],
    base: list[str],
    recorded: str,
    rows: list[str],
    decision: dict[str, Any],
) -> dict[str, Any]:
    """The rule's step 3: the winner and the baseline again, on folds that chose nothing."""
    work = args.work / "confirm"
    sizes = write_folds(work, rows, plan["confirm_seed"], plan["folds"], plan_grouping(plan))
    winner = {**plan["variants"][decision["winner"]], "--epochs": str(decision["epochs"])}
    pair = {"winner": winner, "baseline": {"--epochs": str(epochs_of(recorded.split()))}}
    deadline = time.monotonic() + args.confirm_deadline_s
    done = run_jobs(make_jobs(work, base, pair, sizes), args.jobs, deadline)
    last: dict[str, int | None] = {}
    for name, flags in pair.items():
        by_epoch = totals(done, name, plan["folds"])
        last[name] = by_epoch[int(flags["--epochs"])] if by_epoch else None
    won, lost = last["winner"], last["baseline"]
    gain = None if won is None or lost is None else won - lost
    passes = gain is not None and gain >= plan["min_gain"]
    return {"seed": plan["confirm_seed"], "flags": pair, "correct": last, "gain": gain,
            "passes": passes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--plan", type=Path, required=True, help="the variants and the rule")
    parser.add_argument("--data", type=Path, required=True, help="the data sets' folder")
    parser.add_argument("--work", type=Path, required=True, help="folds, logs and fold models")
    parser.add_argument("--jobs", type=int, default=2, help="training processes at once")
    parser.add_argument("--deadline-s", type=float, default=3600, help="for the selection")
    parser.add_argument("--confirm-deadline-s", type=float, default=1800)
    parser.add_argument("--json", type=Path, help="write the record here too")
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text())
    started = time.monotonic()
    record: dict[str, Any] = {"plan": str(args.plan), "rule": plan["rule"]}

    train_file = args.data / TASKS[plan["task"]].dataset / "train.jsonl"
    rows = train_file.read_text().splitlines(keepends=True)
    recorded = recorded_command(Path(plan["file"]))
    base = fold_command(recorded, Path("FOLD"), Path("OUT"))
    base = with_flags(base, {"--epochs": str(plan["max_epochs"])})
    select = args.work / "select"
    sizes = write_folds(select, rows, plan["select_seed"], plan["folds"], plan_grouping(plan))
    jobs = make_jobs(select, base, plan["variants"], sizes)
    done = run_jobs(jobs, args.jobs, started + args.deadline_s)
    by_variant = {n: totals(done, n, plan["folds"]) for n in plan["variants"]}
    scores = {n: (best_epoch(t) if t else None) for n, t in by_variant.items()}
    decision = choose(scores, plan["noise"], plan["min_lead"], plan.get("floor"))
    record.update(distinct_texts=sum(sizes), select_seed=plan["select_seed"],
                  by_variant=by_variant, scores=scores, decision=decision,
                  select_seconds=round(time.monotonic() - started, 1))  # fmt: skip
    report(record, args.json)  # kept even if the confirmation runs out of time

    if decision["passes"]:
        record["confirm"] = confirm(args, plan, base, recorded, rows, decision)
    record["seconds"] = round(time.monotonic() - started, 1)
    report(record, args.json)


if __name__ == "__main__":
    main()
