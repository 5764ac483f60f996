"""bench/baselines/paired.py: a task and the probe compared row by row (exact McNemar test)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "baselines"))

from paired import first_of_each_text, paired_counts  # noqa: E402
from paired import main as paired_main  # noqa: E402
from scoring import mcnemar_exact  # noqa: E402

from recipes.calibrate_bias import write_out_of_fold  # noqa: E402


def test_exact_mcnemar_matches_the_binomial_tail_written_out() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0  # an even split is no evidence at all
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 5 of 5 one way: 2 * (1/2)^5
    assert mcnemar_exact(9, 4) == mcnemar_exact(4, 9)  # two-sided
    assert mcnemar_exact(9, 4) == pytest.approx(2 * sum(math.comb(13, i) for i in range(5)) / 2**13)
    assert mcnemar_exact(30, 5) < 0.001


def test_paired_counts_sort_every_row_into_one_cell() -> None:
    truth = ["ham", "ham", "spam", "spam", "ham", "spam"]
    ours = ["ham", "spam", "spam", "ham", "ham", "spam"]
    probe = ["ham", "ham", "ham", "ham", "spam", "spam"]
    counts = paired_counts(truth, ours, probe)
    assert counts["both_right"] == 2  # rows 0 and 5
    assert counts["only_ours_right"] == 2  # rows 2 and 4
    assert counts["only_probe_right"] == 1  # row 1
    assert counts["both_wrong"] == 1  # row 3
    assert counts["ours_accuracy"] == pytest.approx(4 / 6)
    assert counts["probe_accuracy"] == pytest.approx(3 / 6)
    assert counts["mcnemar_exact_p"] == 1.0  # 2 against 1
    with pytest.raises(ValueError):
        paired_counts(truth, ours[:-1], probe)


def test_distinct_keeps_the_first_row_of_each_text() -> None:
    rows = [{"text": t, "n": i} for i, t in enumerate(["a", "b", "a", "c", "b"])]
    assert [r["n"] for r in first_of_each_text(rows)] == [0, 1, 3]


def test_out_of_fold_files_compare_text_by_text(tmp_path: Path) -> None:
    # the recipe's out-of-fold rows (calibrate_bias) against the probe's (probe_crossfit)
    spec = SimpleNamespace(labels=("ham", "spam"))
    records = [{"text": t, "label": y} for t, y in [("a", "spam"), ("a", "spam"), ("b", "ham")]]
    write_out_of_fold(tmp_path / "ours.jsonl", spec, records, [0.7, 0.7, 0.2])  # type: ignore[arg-type]
    ours = [json.loads(line) for line in (tmp_path / "ours.jsonl").read_text().splitlines()]
    assert [r["predicted"] for r in ours] == ["spam", "spam", "spam"]
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "spam.jsonl").write_text(
        "".join(json.dumps({**r, "predicted": "ham"}) + "\n" for r in records)
    )
    out = tmp_path / "paired.json"
    argv = ["paired.py", "--tasks", "spam", "--probe-dir", str(probe)]
    argv += ["--ours-file", str(tmp_path / "ours.jsonl"), "--distinct", "--json", str(out)]
    with patch.object(sys, "argv", argv):
        paired_main()
    counts = json.loads(out.read_text())["tasks"]["spam"]
    assert counts["rows"] == 2  # "a" once, "b" once
    assert (counts["only_ours_right"], counts["only_probe_right"]) == (1, 1)
