"""Reading labelled data files: encodings as spreadsheet programs save them."""

from __future__ import annotations

from pathlib import Path

from app.training import data

BOM = b"\xef\xbb\xbf"


def test_a_csv_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a BOM; it was read as part of the first column's name,
    so the file was refused with "missing column(s) ['text']" (audit finding)."""
    path = tmp_path / "bom.csv"
    path.write_bytes(BOM + b"text,label\ngreat,positive\nbad,negative\n")
    dataset = data.load(path)
    assert dataset.texts == ["great", "bad"]
    assert dataset.labels == ["positive", "negative"]


def test_a_jsonl_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        BOM + b'{"text": "great", "label": "positive"}\n{"text": "bad", "label": "negative"}\n'
    )
    dataset = data.load(path)
    assert dataset.texts == ["great", "bad"]
    assert dataset.labels == ["positive", "negative"]
