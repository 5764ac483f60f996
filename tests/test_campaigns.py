"""recipes/campaigns.py: which texts count as one campaign, and folds that keep one together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.training.groups import text_groups
from recipes.calibrate_bias import deal_folds
from recipes.campaigns import campaign_groups, grouping_of, shingles
from recipes.crossfit_sweep import write_folds

CAMPAIGN = [  # one template, a prize and a name changed; one number
    "WINNER! You have won a 500 pound prize. Call 09061701461 now to claim, Jane",
    "WINNER!! You have won a 900 pound prize. Call 09061701461 now to claim, Bob",
]
SAME_WORDING = [  # no number: most of the wording shared
    "Urgent! Your mobile has been selected for a free camera phone upgrade, reply YES",
    "URGENT! Your mobile has been selected for a free colour phone upgrade, reply YES",
]


def test_texts_sharing_a_number_or_most_wording_are_one_campaign() -> None:
    texts = [*CAMPAIGN, *SAME_WORDING, "Free ringtone: text TONE to 87066", "see you at 8"]
    labels = ["spam"] * 5 + ["ham"]
    groups = campaign_groups(texts, labels)
    assert groups == [0, 0, 1, 1, 2, 3]


def test_short_numbers_and_other_labels_never_link() -> None:
    texts = ["call me at 1234 ok", "meet at 1234 then", "Call 09061701461 now", "09061701461?"]
    labels = ["ham", "ham", "spam", "ham"]  # the last shares the number but not the label
    assert campaign_groups(texts, labels) == [0, 1, 2, 3]


def test_with_no_links_campaigns_are_whole_texts() -> None:
    texts = ["ok lar", "ok lar", "where are you", "ok lar", "Free entry: text WIN to 80086"]
    labels = ["ham", "ham", "ham", "ham", "spam"]
    assert campaign_groups(texts, labels) == text_groups(texts)


def test_shingles_ignore_case_and_spacing_and_keep_short_texts() -> None:
    assert shingles("Hello  World") == shingles("hello world")
    assert shingles("ok") == frozenset({"ok"})


def test_an_unknown_grouping_is_refused() -> None:
    assert grouping_of("text", ["a"], ["x"]) is None
    with pytest.raises(ValueError, match="unknown grouping 'topic'"):
        grouping_of("topic", ["a"], ["x"])


def test_campaign_folds_never_split_a_campaign(tmp_path: Path) -> None:
    spam = [CAMPAIGN[0].replace("Jane", f"friend {i}") for i in range(6)]
    spam += [f"Free entry {i}: text WIN{i} to 8008{i}" for i in range(10)]
    ham = [f"see you at {i} by the station, love" for i in range(40)]
    data = [json.dumps({"text": t, "label": "spam"}) + "\n" for t in spam]
    data += [json.dumps({"text": t, "label": "ham"}) + "\n" for t in ham]
    labels = ["spam"] * len(spam) + ["ham"] * len(ham)
    fold = deal_folds(labels, spam + ham, 4, 0, campaign_groups(spam + ham, labels))
    assert len({fold[i] for i in range(6)}) == 1  # the campaign's 6 texts
    sizes = write_folds(tmp_path, data, seed=0, folds=4, grouping="campaign")
    assert sum(sizes) == len(set(spam + ham))
    held = [(tmp_path / f"fold{k}-eval.jsonl").read_text() for k in range(4)]
    with_campaign = [text for text in held if "friend 0" in text]
    assert len(with_campaign) == 1
    assert all(f"friend {i}" in with_campaign[0] for i in range(6))
