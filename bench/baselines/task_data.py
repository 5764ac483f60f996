"""The five benchmark tasks: which files hold each, and loading them as texts and label ids."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

# task name -> (data set folder, train file, evaluation file): the official splits
TASK_FILES: dict[str, tuple[str, str, str]] = {
    "sentiment": ("sst2", "train.jsonl", "dev.jsonl"),
    "topic": ("ag_news", "train.jsonl", "test.jsonl"),
    "question-type": ("trec", "train.jsonl", "test.jsonl"),
    "spam": ("sms_spam", "train.jsonl", "test.jsonl"),
    "intent": ("banking77", "train.jsonl", "test.jsonl"),
}


class DataError(ValueError):
    """A data file that cannot be used, with the file and the reason in the message."""


@dataclass(frozen=True)
class Split:
    texts: list[str]
    label_ids: list[int]
    path: Path


@dataclass(frozen=True)
class TaskData:
    name: str
    labels: list[str]  # sorted label names; label id = index
    train: Split
    eval: Split


def read_jsonl(path: Path) -> list[tuple[str, str]]:
    """(text, label) rows of a JSONL file of {"text", "label"} objects."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (is --data-dir right?)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not isinstance(record, dict) or "text" not in record or "label" not in record:
            raise DataError(f"{path}:{number}: expected an object with 'text' and 'label'")
        rows.append((str(record["text"]), str(record["label"])))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def subsample(rows: list[tuple[str, str]], limit: int | None, seed: int) -> list[tuple[str, str]]:
    """A seeded random subset of `limit` rows (all rows when limit is None), for dry runs."""
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


def to_split(rows: list[tuple[str, str]], label_ids: dict[str, int], path: Path) -> Split:
    unknown = sorted({label for _, label in rows} - label_ids.keys())
    if unknown:
        raise DataError(f"{path}: labels not in the training data: {unknown[:10]}")
    return Split([text for text, _ in rows], [label_ids[label] for _, label in rows], path)


def load_task(name: str, data_dir: Path, limit: int | None = None, seed: int = 0) -> TaskData:
    """Train and eval splits of a task; `limit` caps the rows of each (seeded subset)."""
    if name not in TASK_FILES:
        raise DataError(f"unknown task {name!r}; known: {', '.join(TASK_FILES)}")
    folder, train_file, eval_file = TASK_FILES[name]
    train_path, eval_path = data_dir / folder / train_file, data_dir / folder / eval_file
    all_train_rows = read_jsonl(train_path)
    # label names from the whole train file, so a --limit subset keeps the task's label space
    labels = sorted({label for _, label in all_train_rows})
    train_rows = subsample(all_train_rows, limit, seed)
    eval_rows = subsample(read_jsonl(eval_path), limit, seed)
    if len(labels) < 2:
        raise DataError(f"{train_path}: needs at least two labels, found {labels}")
    label_ids = {label: index for index, label in enumerate(labels)}
    return TaskData(
        name,
        labels,
        to_split(train_rows, label_ids, train_path),
        to_split(eval_rows, label_ids, eval_path),
    )


def parse_tasks(spec: str) -> list[str]:
    """'all' or a comma-separated list of task names."""
    names = list(TASK_FILES) if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [name for name in names if name not in TASK_FILES]
    if unknown:
        raise DataError(f"unknown task(s) {unknown}; known: {', '.join(TASK_FILES)}")
    return names
