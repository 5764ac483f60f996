"""Reading labelled data files: encodings as spreadsheet programs save them, and malformed files
refused with the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def refusal(path: Path) -> str:
    with pytest.raises(data.DataError) as error:
        data.load(path)
    return str(error.value)


def test_a_csv_row_with_an_unquoted_comma_is_refused_not_mislabelled(tmp_path: Path) -> None:
    """`hello, world,pos` was read as text 'hello', label 'world', 'pos' dropped (audit finding)."""
    path = tmp_path / "train.csv"
    path.write_text("text,label\ngood movie,pos\nbad movie,neg\nhello, world,pos\n")
    assert f"{path}:4: 3 fields, more than the header's 2; quote a field" in refusal(path)


def test_quoted_commas_and_newlines_and_old_mac_line_ends_still_load(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b'text,label\r"hello, world",pos\r"two\rlines",neg\r')
    dataset = data.load(path)
    assert dataset.texts == ["hello, world", "two\rlines"]
    assert dataset.labels == ["pos", "neg"]


@pytest.mark.parametrize(
    ("header", "column"), [("text,text,label", "text"), ("text,label,label", "label")]
)
def test_a_duplicated_csv_column_is_refused(header: str, column: str, tmp_path: Path) -> None:
    """The last of the duplicated columns was used, silently (audit finding)."""
    path = tmp_path / "train.csv"
    path.write_text(f"{header}\na,b,c\n")
    assert f"{path}:1: column '{column}' appears more than once" in refusal(path)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (r'{"text": "a\ud800b", "label": "pos"}', "'text' is not valid Unicode"),
        (r'{"text": "ab", "label": "p\udc00"}', "'label' is not valid Unicode"),
    ],
    ids=["text", "label"],
)
def test_a_lone_surrogate_is_refused_on_loading(row: str, says: str, tmp_path: Path) -> None:
    """It loaded, then the tokenizer raised a TypeError traceback mid-run (audit finding)."""
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": "neg"}\n' + row + "\n")
    assert f"{path}:2: {says}" in refusal(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("train.jsonl", b'{"text": "ok", "label": "a"}\n\n{"text": "caf\xe9", "label": "b"}\n'),
        ("train.csv", b'text,label\n\n"caf\xe9",b\n'),
    ],
    ids=["jsonl", "csv"],
)
def test_a_file_not_in_utf8_is_refused_naming_file_and_line(
    name: str, content: bytes, tmp_path: Path
) -> None:
    """The message was codec's alone: "can't decode byte 0xe9 in position 44" (audit finding)."""
    path = tmp_path / name
    path.write_bytes(content)
    assert f"{path}:3: not UTF-8 (byte 0xe9)" in refusal(path)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("9" * 5000, "a number too long to read"),
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ],
    ids=["long-int", "deep"],
)
def test_json_python_cannot_parse_is_refused_naming_the_line(
    value: str, says: str, tmp_path: Path
) -> None:
    """An over-long integer (ValueError) and deep nesting (RecursionError) had no file or line."""
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n{"text": "x", "label": ' + value + "}\n")
    assert f"{path}:2: {says}" in refusal(path)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('text,label\n"two\nlines",a\n\n"b\nc",b\nok,a\n\n\n,b\n', 10),  # empty text
        ('text,label\nok,a\n\n"starts here\nends here",\n', 4),  # empty label: where it starts
    ],
    ids=["empty-text", "empty-label"],
)
def test_csv_errors_name_the_physical_line(content: str, line: int, tmp_path: Path) -> None:
    """Rows were counted, not lines: quoted newlines and blank lines shifted the number (line 9
    was reported as 6 in the audit's file)."""
    path = tmp_path / "train.csv"
    path.write_text(content)
    assert f"{path}:{line}: " in refusal(path)


def test_a_directory_is_refused_as_a_directory(tmp_path: Path) -> None:
    """It was reported as "no such file" (audit finding)."""
    path = tmp_path / "train.jsonl"
    path.mkdir()
    assert f"{path}: is a directory" in refusal(path)


@pytest.mark.parametrize("name", ["train.tsv", "train.txt", "train"])
def test_an_unknown_extension_is_refused_listing_the_supported_ones(
    name: str, tmp_path: Path
) -> None:
    """Any extension but .csv was read as JSON lines: a TSV gave "not valid JSON" (audit)."""
    path = tmp_path / name
    path.write_text("text\tlabel\nhello\tpos\n")
    assert ".jsonl or .json (JSON lines) or .csv" in refusal(path)
