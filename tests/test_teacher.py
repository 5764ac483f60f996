"""recipes/teacher.py's cross-fitting folds: a repeated text's rows share one fold."""

from __future__ import annotations

import random
from collections import Counter

from recipes.teacher import deal


def test_without_repeats_texts_and_rows_give_the_old_folds() -> None:
    texts = [f"text {i}" for i in range(23)]
    old = [i % 5 for i in range(23)]  # the row-wise dealing this script used before
    random.Random(7).shuffle(old)
    assert deal(texts, 5, seed=7) == old
    assert deal(texts, 5, seed=7, by_row=True) == old


def test_a_repeated_texts_rows_share_a_fold() -> None:
    texts = [f"text {i % 9}" for i in range(40)]  # 9 texts, each repeated 4 or 5 times
    fold = deal(texts, 3, seed=0)
    by_text: dict[str, set[int]] = {}
    for text, k in zip(texts, fold, strict=True):
        by_text.setdefault(text, set()).add(k)
    assert all(len(folds) == 1 for folds in by_text.values())
    assert sorted(Counter(fold[texts.index(t)] for t in by_text).values()) == [3, 3, 3]


def test_by_row_can_split_a_text_across_folds() -> None:
    texts = [f"text {i % 9}" for i in range(40)]
    fold = deal(texts, 3, seed=0, by_row=True)
    folds_of = {text: {k for t, k in zip(texts, fold, strict=True) if t == text} for text in texts}
    assert any(len(folds) > 1 for folds in folds_of.values())
    assert sorted(Counter(fold).values()) == [13, 13, 14]
