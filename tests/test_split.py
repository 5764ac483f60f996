"""recipes/split.py: the validation split is cut by distinct text, like the data's test splits."""

from __future__ import annotations

import json
import random
from pathlib import Path

from recipes.split import split


def test_validation_never_holds_a_text_that_training_saw(tmp_path: Path) -> None:
    rows = [{"text": f"t{i % 50}", "label": "ab"[i % 2]} for i in range(100)]  # 50 texts, twice
    source = tmp_path / "train.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert split(source, tmp_path / "out", fraction=0.1, seed=0) == (90, 10)  # 5 texts of 50
    train, val = (
        [json.loads(line) for line in (tmp_path / "out" / name).read_text().splitlines()]
        for name in ("train.jsonl", "val.jsonl")
    )
    assert {r["text"] for r in train}.isdisjoint(r["text"] for r in val)
    assert sorted(map(json.dumps, train + val)) == sorted(map(json.dumps, rows))  # nothing lost


def test_by_row_shuffles_rows_as_splits_did_before_texts_were_kept_whole(tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"t{i % 50}", "label": "ab"[i % 2]}) for i in range(100)]
    source = tmp_path / "train.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    split(source, tmp_path / "out", fraction=0.1, seed=0, by_row=True)
    order = list(range(100))
    random.Random(0).shuffle(order)
    val = (tmp_path / "out" / "val.jsonl").read_text().splitlines()
    assert val == [lines[i] for i in sorted(order[:10])]
