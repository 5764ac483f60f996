"""app/training/groups.py: rows held out to choose something never share a text with fitted rows."""

from __future__ import annotations

import pytest
import torch

from app.training.groups import group_folds, held_out_split, members, text_groups
from app.training.logreg import cross_validate_l2

TEXTS = ["a", "b", "a", "c", "d", "b", "e", "a", "f", "g", "h", "i"]


def test_groups_number_distinct_texts_in_order_of_first_appearance() -> None:
    groups = text_groups(TEXTS)
    assert groups == [0, 1, 0, 2, 3, 1, 4, 0, 5, 6, 7, 8]
    assert members(groups)[0] == [0, 2, 7]


@pytest.mark.parametrize("seed", range(5))
def test_a_held_out_split_keeps_each_text_on_one_side(seed: int) -> None:
    kept, held = held_out_split(text_groups(TEXTS), 0.25, seed)
    assert sorted(kept.tolist() + held.tolist()) == list(range(len(TEXTS)))
    assert {TEXTS[i] for i in kept.tolist()}.isdisjoint(TEXTS[i] for i in held.tolist())
    assert len(held) >= 3 and len(kept) >= 1


def test_without_repeats_the_split_is_a_plain_shuffle_of_the_rows() -> None:
    kept, held = held_out_split(list(range(50)), 0.1, seed=3)
    order = torch.randperm(50, generator=torch.Generator().manual_seed(3))
    assert held.tolist() == order[:5].tolist() and kept.tolist() == order[5:].tolist()


def test_folds_cover_every_row_once_and_keep_texts_together() -> None:
    folds = group_folds(text_groups(TEXTS), 4, seed=0)
    assert len(folds) == 4
    assert sorted(torch.cat(folds).tolist()) == list(range(len(TEXTS)))
    seen = [{TEXTS[i] for i in fold.tolist()} for fold in folds]
    assert sum(len(s) for s in seen) == len(set(TEXTS))  # no text in two folds
    with pytest.raises(ValueError, match="distinct texts"):
        group_folds(text_groups(["x", "x", "y"]), 3, seed=0)


def test_repeated_rows_do_not_inflate_cross_validation() -> None:
    # 60 random points with random labels, each row repeated 3 times: nothing to learn, but a
    # weakly penalised fit memorises, and row-wise folds would score the copies it saw
    g = torch.Generator().manual_seed(0)
    points, labels = torch.randn(60, 40, generator=g), torch.randint(0, 2, (60,), generator=g)
    features, targets = points.repeat(3, 1), labels.repeat(3)
    groups = list(range(60)) * 3
    _, by_text = cross_validate_l2(features, targets, 2, 5, 0, groups, [1e-6])
    _, by_row = cross_validate_l2(features, targets, 2, 5, 0, list(range(180)), [1e-6])
    assert by_row["1e-06"] > 0.9  # the leak: held-out rows whose copies were fitted
    assert by_text["1e-06"] < 0.7  # whole texts held out: near chance, as it should be
