"""recipes/calibrate_bias.py: folds, the threshold it chooses, the command each fold trains with."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipes.calibrate_bias import choose_delta, deal_folds, fold_command


def test_folds_are_stratified_seeded_and_cover_every_row() -> None:
    labels = ["ham"] * 87 + ["spam"] * 13
    texts = [f"message {i}" for i in range(100)]
    fold = deal_folds(labels, texts, 5, seed=0)
    assert fold == deal_folds(labels, texts, 5, seed=0)
    assert fold != deal_folds(labels, texts, 5, seed=1)
    for k in range(5):
        spam = sum(1 for f, label in zip(fold, labels, strict=True) if f == k and label == "spam")
        assert spam in (2, 3)  # 13 spam rows dealt over 5 folds
        assert 19 <= fold.count(k) <= 21


def test_a_repeated_text_is_dealt_whole_and_a_fold_never_sees_its_own_rows() -> None:
    # spam campaigns repeat: 10 spam texts sent 3 times each, beside 60 distinct ham texts
    texts = [f"ham {i}" for i in range(60)] + [f"spam {i % 10}" for i in range(30)]
    labels = ["ham"] * 60 + ["spam"] * 30
    fold = deal_folds(labels, texts, 5, seed=0)
    by_text: dict[str, set[int]] = {}
    for text, k in zip(texts, fold, strict=True):
        by_text.setdefault(text, set()).add(k)
    assert all(len(folds) == 1 for folds in by_text.values())
    for k in range(5):  # stratified by distinct text: 2 spam texts (6 rows) in every fold
        assert sum(1 for t, f in zip(texts, fold, strict=True) if f == k and "spam" in t) == 6


def test_no_shift_when_zero_is_already_best() -> None:
    delta, best, at_zero = choose_delta([-3.0, -1.0, 2.0, 4.0], [False, False, True, True])
    assert best == at_zero == 4
    assert -1.0 < -delta < 2.0  # the optimal interval holding 0: (-1, 2), midpoint 0.5
    assert delta == pytest.approx(-0.5)


def test_a_lean_towards_the_first_label_is_shifted_back_by_the_nearest_optimal_interval() -> None:
    # positives at -0.5 and -0.2 are lost at delta 0; a threshold below -0.5 recovers both
    margins = [-3.0, -2.0, -0.5, -0.2, 1.0, 2.0]
    positive = [False, False, True, True, True, True]
    delta, best, at_zero = choose_delta(margins, positive)
    assert (best, at_zero) == (6, 4)
    assert delta == pytest.approx(1.25)  # threshold -1.25, midway between -2.0 and -0.5
    assert all((m + delta > 0) == p for m, p in zip(margins, positive, strict=True))


def test_of_equal_intervals_the_one_nearest_zero_wins() -> None:
    delta, best, _ = choose_delta([-1.0, 1.0, 3.0], [False, True, False])
    assert best == 2
    assert delta == pytest.approx(0.0)  # (-1, 1) holds 0; (3, 4) scores as well, farther


def test_fold_command_keeps_the_recipe_and_replaces_where_data_comes_from_and_goes() -> None:
    recorded = (
        "promptserve train --task spam --train data/train.jsonl --eval data/val.jsonl "
        "--epochs 5 --seed 0 --description 'SMS spam: spam/ham' --out /tmp/x.safetensors "
        "--prompts-dir prompts --no-progress --device auto"
    )
    command = fold_command(recorded, Path("f.jsonl"), Path("o.safetensors"))
    assert command == [
        "train", "--task", "spam", "--epochs", "5", "--seed", "0",
        "--description", "SMS spam: spam/ham",
        "--train", "f.jsonl", "--out", "o.safetensors", "--no-progress",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a recorded training command"):
        fold_command("python train.py", Path("f"), Path("o"))
