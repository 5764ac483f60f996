"""recipes/sweep.py: which configuration of a task's sweep is chosen; the flags it trains with."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from recipes.sweep import choose, flags, run_job
from recipes.tasks import COMMON, GRID


def job(tmp_path: Path, task: str, config: str, **scores: float) -> dict[str, Any]:
    trained = tmp_path / f"{task}-{config}.safetensors"
    trained.write_bytes(config.encode())  # choose() copies the chosen file; its bytes name it
    return {"task": task, "config": config, "file": str(trained), **scores}


def test_accuracy_ties_go_to_the_best_validation_macro_f1_then_to_job_order(
    tmp_path: Path,
) -> None:
    """Audit 3 finding 11: the README's rule is "ties: best validation macro-F1"; choose() broke
    accuracy ties by job order, and run_job did not record the macro-F1 at all."""
    records = [
        job(tmp_path, "intent", "a", val_accuracy=0.9233, val_macro_f1=0.9101),
        job(tmp_path, "intent", "b", val_accuracy=0.9233, val_macro_f1=0.9187),
        job(tmp_path, "intent", "c", val_accuracy=0.9233, val_macro_f1=0.9187),
        job(tmp_path, "intent", "d", val_accuracy=0.9100, val_macro_f1=0.9500),
        {"task": "intent", "config": "e", "status": "failed: exit 1"},
        job(tmp_path, "spam", "f", val_accuracy=0.97, val_macro_f1=0.95),
        job(tmp_path, "spam", "g", val_accuracy=0.98, val_macro_f1=0.90),
    ]
    chosen = choose(records, tmp_path / "work")
    assert {task: record["config"] for task, record in chosen.items()} == {
        "intent": "b",
        "spam": "g",
    }
    assert (tmp_path / "work" / "chosen" / "intent.safetensors").read_bytes() == b"b"


def test_a_job_records_the_validation_macro_f1_the_choice_needs(tmp_path: Path) -> None:
    """run_job reads the trained file's eval record; stand-in commands play train and eval."""
    (tmp_path / "intent").mkdir()
    out = tmp_path / "intent" / "a.safetensors"
    metrics = {
        "eval": {"accuracy": 0.9233, "macro_f1": 0.9187},
        "training": {"best_epoch": 3, "seconds": 1.0, "examples_per_s": 10, "device": "cpu"},
    }
    save_file({"x": torch.zeros(1)}, str(out), metadata={"metrics": json.dumps(metrics)})
    train = [sys.executable, "-c", "pass"]
    scored = json.dumps({"accuracy": 0.91, "macro_f1": 0.9})
    evaluate = [sys.executable, "-c", f"print({scored!r})"]
    record = run_job("intent", "a", (train, evaluate, out), tmp_path, time.monotonic() + 60)
    assert record["status"] == "ok"
    assert (record["val_accuracy"], record["val_macro_f1"]) == (0.9233, 0.9187)


def test_a_configuration_s_flag_replaces_the_common_one_and_appears_once() -> None:
    built = flags(COMMON, GRID["m5-lr1e-2-l2-wd-bs16"])
    assert built.count("--batch-size") == 1
    assert built[built.index("--batch-size") + 1] == "16"
    assert built[built.index("--seed") + 1] == "0"  # COMMON's others kept
    for config in GRID.values():  # flag-value pairs, each configuration's value kept
        merged = flags(COMMON, config)
        values = dict(zip(merged[::2], merged[1::2], strict=True))
        for flag, value in zip(config[::2], config[1::2], strict=True):
            assert values[flag] == value, (flag, config)
