"""Rows from one campaign are held out together.

SMS spam comes in campaigns: one sender's template sent many times with a word, a prize or a
date changed, often with the same phone number or short code. Of the training file's 455 distinct
spam texts, 277 campaigns remain when texts that share a number or most of their wording are
joined. Folds dealt by whole text (app.training.groups) put one campaign on both sides, so a
held-out text is often a near copy of a fitted one, and out-of-fold counts reward memorising
campaigns. The test and hidden splits hold campaigns the training file may not have; folds dealt
by campaign measure that instead. (On SMS spam the counts moved little: version 9's recipe got
3,626 to 3,633 of 3,660 texts right over its epochs, the probe 3,600;
recipes/campaign-sweep-cpu.json.)

Two distinct texts with the same label are linked when they share a run of `min_digits` or more
digits, or when their character 5-gram sets overlap by at least `min_jaccard` (Jaccard, after
lower-casing and collapsing white space). A campaign is a connected component of links. Nothing
here reads a model: the groups depend on the texts and labels alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.training.groups import first_rows, text_groups

GROUPINGS = ("text", "campaign")  # what one fold keeps together


def shingles(text: str, n: int = 5) -> frozenset[str]:
    """The text's character n-grams, lower-cased, white space collapsed (the text itself if
    shorter than n)."""
    flat = re.sub(r"\s+", " ", text.lower()).strip()
    return frozenset(flat[i : i + n] for i in range(max(1, len(flat) - n + 1)))


def campaign_groups(
    texts: Sequence[str],
    labels: Sequence[str],
    min_jaccard: float = 0.5,
    min_digits: int = 5,
) -> list[int]:
    """Each row's campaign, numbered in order of first appearance. Rows with the same text share
    one; with no links this is exactly app.training.groups.text_groups."""
    by_text = text_groups(texts)
    distinct = first_rows(texts)  # by_text's group g is the text of row distinct[g]
    parent = list(range(len(distinct)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in _links([texts[r] for r in distinct], [labels[r] for r in distinct],
                       min_jaccard, min_digits):  # fmt: skip
        parent[root(a)] = root(b)
    index: dict[int, int] = {}
    return [index.setdefault(root(g), len(index)) for g in by_text]


def _links(
    texts: list[str], labels: list[str], min_jaccard: float, min_digits: int
) -> list[tuple[int, int]]:
    """Pairs (i, j) of same-label texts that share a long number or most of their wording."""
    links = []
    owner: dict[tuple[str, str], int] = {}
    pattern = re.compile(rf"\d{{{min_digits},}}")
    for i, text in enumerate(texts):
        for number in sorted(set(pattern.findall(text))):
            j = owner.setdefault((labels[i], number), i)
            if j != i:
                links.append((j, i))
    grams = [shingles(t) for t in texts]
    for label in sorted(set(labels)):
        same = [i for i, lab in enumerate(labels) if lab == label]
        rows = sorted(same, key=lambda i: len(grams[i]))
        for a, i in enumerate(rows):
            for j in rows[a + 1 :]:
                if len(grams[i]) < min_jaccard * len(grams[j]):
                    break  # sorted by size: no later j can reach the overlap
                shared = len(grams[i] & grams[j])
                if shared >= min_jaccard * (len(grams[i]) + len(grams[j]) - shared):
                    links.append((i, j))
    return links


def grouping_of(name: str, texts: Sequence[str], labels: Sequence[str]) -> list[int] | None:
    """Rows' groups for folds by `name`: None for "text" (deal_folds' own whole-text groups)."""
    if name not in GROUPINGS:
        raise ValueError(f"unknown grouping {name!r}: expected one of {', '.join(GROUPINGS)}")
    return campaign_groups(texts, labels) if name == "campaign" else None
