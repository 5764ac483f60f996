"""Labelled text data for training and evaluation: JSONL or CSV files of (text, label) rows."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """A data file that cannot be used, with a message that says why and where."""


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    path: Path

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
    texts = [text for text, _ in rows]
    labels = [label for _, label in rows]
    return Dataset(texts, labels, path)


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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> list[tuple[str, str]]:
    rows = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected an object with 'text' and 'label'")
            rows.append(_row(record, f"{path}:{number}"))
    return rows


def _read_csv(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        missing = {"text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(
                f"{path}: missing column(s) {sorted(missing)}; the header must have text,label"
            )
        return [_row(record, f"{path}:{number}") for number, record in enumerate(reader, 2)]


def _row(record: dict[str, object], where: str) -> tuple[str, str]:
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
    return text, label
