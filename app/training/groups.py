"""Rows that repeat a text are held out together.

A data set can hold the same text more than once: SMS spam's training file has 3,911 rows but
3,660 distinct texts, and 443 of its rows repeat another row's text. When rows are held out to
choose something (a penalty, an epoch count), a held-out row whose text also sits among the
fitted rows is scored on something already seen, and the choice drifts towards memorising. The
data's own test and hidden splits are cut by distinct text, so the rows held out here are too:
every row of a text goes to the same side.

With no repeated text, each group is one row and the order is exactly that of shuffling the rows
themselves: `held_out_split` then gives the same split, for the same seed, as before grouping
existed (`group_folds` cuts that order into folds of sizes differing by at most one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def text_groups(texts: Sequence[str]) -> list[int]:
    """Each row's group: its text's index among the distinct texts, in order of first appearance."""
    index: dict[str, int] = {}
    return [index.setdefault(text, len(index)) for text in texts]


def members(groups: Sequence[int]) -> list[list[int]]:
    """The rows of each group, by group index."""
    rows: list[list[int]] = [[] for _ in range(max(groups, default=-1) + 1)]
    for row, group in enumerate(groups):
        rows[group].append(row)
    return rows


def first_rows(texts: Sequence[str]) -> list[int]:
    """The first row of each distinct text, in order: the rows to count when each text counts once
    (as the data's test and hidden splits count them)."""
    return [rows[0] for rows in members(text_groups(texts))]


def shuffled_groups(groups: Sequence[int], seed: int) -> list[list[int]]:
    """The groups' row lists in a seeded random order (torch's randperm over the groups)."""
    rows = members(groups)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    return [rows[g] for g in order]


def held_out_split(
    groups: Sequence[int], fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit rows, held-out rows): whole groups, in a seeded order, held out until at least
    `fraction` of the rows (and at least one) are; a text's rows never fall on both sides."""
    order = shuffled_groups(groups, seed)
    target = max(1, round(len(groups) * fraction))
    held: list[int] = []
    taken = 0
    while len(held) < target and taken < len(order) - 1:
        held += order[taken]
        taken += 1
    kept = [row for group in order[taken:] for row in group]
    return torch.tensor(kept, dtype=torch.long), torch.tensor(held, dtype=torch.long)


def group_folds(groups: Sequence[int], folds: int, seed: int) -> list[torch.Tensor]:
    """`folds` disjoint sets of rows covering every row: the groups in a seeded order, cut into
    `folds` runs whose group counts differ by at most one."""
    order = shuffled_groups(groups, seed)
    if not 2 <= folds <= len(order):
        raise ValueError(f"{folds} folds for {len(order)} distinct texts: need 2 <= folds <= texts")
    runs = torch.arange(len(order)).tensor_split(folds)
    return [
        torch.tensor([row for g in run.tolist() for row in order[g]], dtype=torch.long)
        for run in runs
    ]
