"""Labelled text data for training and evaluation: JSONL or CSV files of (text, label) rows.

JSONL rows may also carry a teacher's `soft_label`: {label: probability}, on every row or none,
for distillation (`train --distill-weight`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import listed

if TYPE_CHECKING:
    from app.tokenize import TextTokenizer


class DataError(ValueError):
    """A data file that cannot be used, with a message that says why and where."""


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    path: Path
    soft_labels: list[dict[str, float]] | None = None  # per row, normalised; None: none given

    def __len__(self) -> int:
        return len(self.texts)

    def label_names(self) -> tuple[str, ...]:
        """The distinct labels, sorted so that the same data always gives the same label order."""
        return tuple(sorted(set(self.labels)))


def load(path: str | Path) -> Dataset:
    """Read `{"text", "label"}` JSON lines, or a CSV with `text` and `label` columns."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    read = _READERS.get(path.suffix.lower())
    if read is None:
        raise DataError(
            f"{path}: unknown data file type {path.suffix or '(no extension)'}; "
            "use .jsonl or .json (JSON lines) or .csv"
        )
    rows = read(path)
    if not rows:
        raise DataError(f"{path}: no examples")
    texts = [text for text, _, _ in rows]
    labels = [label for _, label, _ in rows]
    soft = [soft for _, _, soft in rows if soft is not None]
    if not soft:
        return Dataset(texts, labels, path)
    if len(soft) < len(rows):
        missing = next(number for number, row in enumerate(rows, 1) if row[2] is None)
        raise DataError(
            f"{path}: example {missing} has no 'soft_label' while others do; give it on every row"
        )
    return Dataset(texts, labels, path, soft)


def check_training_labels(data: Dataset) -> tuple[str, ...]:
    names = data.label_names()
    if len(names) < 2:
        raise DataError(f"{data.path}: every example has label {names[0]!r}; need at least two")
    return names


def check_known_labels(data: Dataset, known: tuple[str, ...]) -> None:
    unknown = sorted(set(data.labels) - set(known))
    if unknown:
        raise DataError(
            f"{data.path}: label(s) {unknown[:10]} are not among the task's labels {list(known)}"
        )


def check_soft_labels(data: Dataset, known: tuple[str, ...]) -> None:
    for number, soft in enumerate(data.soft_labels or [], 1):
        unknown = sorted(set(soft) - set(known))
        if unknown:
            raise DataError(
                f"{data.path}: example {number}'s soft_label names label(s) {unknown[:10]} that "
                f"no example has; the task's labels are {list(known)}"
            )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


Row = tuple[str, str, dict[str, float] | None]  # text, label, soft label


def _read_jsonl(path: Path) -> list[Row]:
    rows = []
    for number, line in enumerate(io.StringIO(_read_text(path), newline=None), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        record = _parse_json(line, where)
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected an object with 'text' and 'label'")
        text, label, _ = _row(record, where)
        soft = record.get("soft_label")
        rows.append((text, label, None if soft is None else _soft_label(soft, where)))
    return rows


def _parse_json(line: str, where: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        hint = "; one JSON object per line is expected, not an array" if line[:1] == "[" else ""
        raise DataError(f"{where}: not valid JSON ({exc.msg}){hint}") from exc
    except ValueError as exc:  # an integer past Python's 4300-digit limit
        raise DataError(f"{where}: a number too long to read ({str(exc).split(';')[0]})") from exc
    except RecursionError as exc:
        raise DataError(f"{where}: JSON nested too deeply to read") from exc


def _read_csv(path: Path) -> list[Row]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = next(reader, [])
        _check_header(header, path, reader.line_num)
        rows = []
        start = reader.line_num + 1  # a record's first physical line: quoted fields span lines
        for fields in reader:
            where, start = f"{path}:{start}", reader.line_num + 1
            if not fields:  # a blank line
                continue
            if len(fields) > len(header):
                raise DataError(
                    f"{where}: {len(fields)} fields, more than the header's {len(header)}; "
                    "quote a field that contains a comma"
                )
            rows.append(_row(dict(zip(header, fields, strict=False)), where))
    except csv.Error as exc:  # e.g. a field over csv's 128 KiB limit
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from exc
    return rows


def _check_header(header: list[str], path: Path, line: int) -> None:
    missing = {"text", "label"} - set(header)
    if missing:
        raise DataError(
            f"{path}: missing column(s) {sorted(missing)}; the header must have text,label"
        )
    for column in ("text", "label"):
        if header.count(column) > 1:
            raise DataError(
                f"{path}:{line}: column {column!r} appears more than once in the header"
            )


def _read_text(path: Path) -> str:
    """The file as UTF-8; a leading byte-order mark (Excel's "CSV UTF-8" has one) is skipped."""
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = len((raw[: exc.start] + b"x").splitlines())  # the bad byte's physical line
        raise DataError(
            f"{path}:{line}: not UTF-8 (byte {raw[exc.start]:#04x}); save the file as UTF-8"
        ) from exc


_READERS = {".jsonl": _read_jsonl, ".json": _read_jsonl, ".csv": _read_csv}


def _row(record: dict[str, object], where: str) -> Row:
    missing = [key for key in ("text", "label") if key not in record or record[key] is None]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing}")
    text, label = record["text"], record["label"]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: 'text' must be a non-empty string")
    if isinstance(label, bool) or not isinstance(label, str | int):
        raise DataError(f"{where}: 'label' must be a string (or an integer)")
    label = str(label).strip()
    if not label:
        raise DataError(f"{where}: 'label' is empty")
    for name, value in (("text", text), ("label", label)):
        _check_unicode(value, f"{where}: {name!r}")
    return text, label, None


def _check_unicode(value: str, what: str) -> None:
    """JSON's \\ud800-style escapes can give lone surrogates, which no tokenizer accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(value[exc.start])
        raise DataError(f"{what} is not valid Unicode (lone surrogate \\u{bad:04x})") from exc


def _soft_label(value: object, where: str) -> dict[str, float]:
    """{label: probability}: finite and non-negative, normalised here to sum to 1."""
    problem = f"{where}: 'soft_label' must be an object of label: probability"
    if not isinstance(value, dict) or not value:
        raise DataError(problem)
    probs = {}
    for label, prob in value.items():
        if isinstance(prob, bool) or not isinstance(prob, int | float):
            raise DataError(f"{problem} (label {label!r} has {prob!r})")
        if not math.isfinite(prob) or prob < 0:
            raise DataError(f"{problem}, each finite and >= 0 (label {label!r} has {prob!r})")
        probs[str(label).strip()] = float(prob)
    total = sum(probs.values())
    if total <= 0:
        raise DataError(f"{problem}, not all zero")
    return {label: prob / total for label, prob in probs.items()}


def check_classifiable(dataset: Dataset, tokenizer: TextTokenizer) -> None:
    """Refuse rows with nothing to classify once the server's tokenizer has read them (empty
    after its cut, blank, only characters it drops): the server answers them 422, so `eval
    --url` would stop midway where `eval --file` and `train` went on."""
    empty = [i + 1 for i, t in enumerate(tokenizer(dataset.texts, max_tokens=8)) if t.empty]
    if empty:
        raise DataError(
            f"{dataset.path}: data row(s) {listed(empty)} (counting from 1) have nothing to "
            "classify: empty once cut to max_text_chars, blank, or only characters the "
            "tokenizer drops"
        )
