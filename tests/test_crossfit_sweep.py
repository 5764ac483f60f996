"""recipes/crossfit_sweep.py: its folds, its rule, and its jobs run for real on the tiny BERT."""

from __future__ import annotations

import json
import time
from pathlib import Path

from recipes.crossfit_sweep import (
    best_epoch,
    choose,
    make_jobs,
    run_jobs,
    totals,
    with_flags,
    write_folds,
)


def rows(count: int) -> list[str]:
    """A spam-like file whose texts repeat: row i has text i % 7 (so 7 distinct texts)."""
    out = []
    for i in range(count):
        label = "spam" if i % 7 < 3 else "ham"
        out.append(json.dumps({"text": f"{label} message number {i % 7}", "label": label}) + "\n")
    return out


def test_a_flag_is_replaced_or_added_and_nothing_else_moves() -> None:
    words = ["train", "--epochs", "5", "--seed", "0"]
    assert with_flags(words, {"--seed": "2"}) == ["train", "--epochs", "5", "--seed", "2"]
    assert with_flags(words, {"--dropout": "0.1"}) == [*words, "--dropout", "0.1"]


def test_held_out_folds_hold_each_distinct_text_once_and_never_in_training(tmp_path: Path) -> None:
    data = rows(40)
    sizes = write_folds(tmp_path, data, seed=2, folds=3)
    assert sum(sizes) == 7
    for k, size in enumerate(sizes):
        held = [json.loads(r)["text"] for r in (tmp_path / f"fold{k}-eval.jsonl").open()]
        trained = {json.loads(r)["text"] for r in (tmp_path / f"fold{k}-train.jsonl").open()}
        assert len(held) == len(set(held)) == size
        assert not trained & set(held)  # a repeated text is never both seen and unseen
    assert write_folds(tmp_path / "again", data, seed=2, folds=3) == sizes  # seeded


def test_the_best_epoch_is_the_fewest_among_ties_and_a_missing_fold_scores_nothing() -> None:
    done = {("a", 0): {0: 5, 1: 6, 2: 8, 3: 8}, ("a", 1): {0: 1, 1: 2, 2: 3, 3: 3}}
    assert totals(done, "a", 2) == {1: 8, 2: 11, 3: 11}  # the warm start (0) is not a recipe
    assert best_epoch({1: 8, 2: 11, 3: 11}) == (2, 11)
    assert totals(done, "a", 3) is None


def test_a_candidate_must_beat_every_noise_seed_by_the_lead() -> None:
    noise = ["v9", "v9-seed1"]
    scores = {"v9": (5, 100), "v9-seed1": (4, 103), "m20": (3, 106), "m50": (6, 105)}
    assert choose(scores, noise, min_lead=3) == {
        "winner": "m20", "epochs": 3, "lead": 3, "passes": True
    }  # fmt: skip
    assert not choose(scores, noise, min_lead=4)["passes"]
    assert not choose({**scores, "v9-seed1": None}, noise, min_lead=0)["passes"]


def test_a_plans_floor_from_an_earlier_run_raises_the_bar() -> None:
    scores = {"v9": (5, 100), "m20": (3, 106)}
    assert choose(scores, ["v9"], min_lead=3, measured={"v9-seed1 (H100)": 103})["passes"]
    beaten = choose(scores, ["v9"], min_lead=3, measured={"v9-seed2 (H100)": 104})
    assert beaten["lead"] == 2 and not beaten["passes"]


def test_jobs_train_on_their_folds_and_score_every_epoch(tmp_path: Path, tiny_backbone_dir) -> None:  # type: ignore[no-untyped-def]
    sizes = write_folds(tmp_path, rows(60), seed=0, folds=2)
    base = ["train", "--task", "t", "--epochs", "2", "--prompt-len", "2", "--precision", "fp32",
            "--backbone", str(tiny_backbone_dir), "--no-progress"]  # fmt: skip
    jobs = make_jobs(tmp_path, base, {"a": {}, "b": {"--epochs": "1"}}, sizes)
    assert [(j.variant, j.fold, j.epochs) for j in jobs] == [
        ("a", 0, 2), ("a", 1, 2), ("b", 0, 1), ("b", 1, 1)
    ]  # fmt: skip
    done = run_jobs(jobs, parallel=2, deadline=time.monotonic() + 300)
    assert set(done) == {(j.variant, j.fold) for j in jobs}
    for (variant, k), by_epoch in done.items():
        assert set(by_epoch) == set(range(3 if variant == "a" else 2))  # warm start, epochs
        assert all(0 <= c <= sizes[k] for c in by_epoch.values())
    # past the deadline nothing starts, and a complete log is read rather than rerun
    assert run_jobs(jobs[:1], parallel=1, deadline=time.monotonic()) == {("a", 0): done[("a", 0)]}
    late = make_jobs(tmp_path, base, {"c": {}}, sizes)
    assert run_jobs(late, parallel=1, deadline=time.monotonic()) == {}
