"""Labelled text data for training and evaluation: JSONL or CSV files of (text, label) rows.

JSONL rows may also carry a teacher's `soft_label`: {label: probability}, on every row or none,
for distillation (`train --distill-weight`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path


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
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
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
    with path.open(encoding="utf-8-sig") as file:  # -sig: a leading byte-order mark is skipped
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected an object with 'text' and 'label'")
            where = f"{path}:{number}"
            text, label, _ = _row(record, where)
            soft = record.get("soft_label")
            rows.append((text, label, None if soft is None else _soft_label(soft, where)))
    return rows


def _read_csv(path: Path) -> list[Row]:
    # -sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would glue onto 'text'.
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file)
        missing = {"text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(
                f"{path}: missing column(s) {sorted(missing)}; the header must have text,label"
            )
        return [_row(record, f"{path}:{number}") for number, record in enumerate(reader, 2)]


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
    return text, label, None


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
