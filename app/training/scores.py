"""Classification scores: accuracy, macro-F1, confusion matrix and a per-label report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


# Above this many labels the confusion matrix is too wide to read as a table; --json has it.
MAX_TABLE_CONFUSION_LABELS = 20


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float  # mean F1 over the labels that occur as truth or as prediction (sklearn's)
    examples: int
    labels: tuple[str, ...]
    confusion: list[list[int]]  # [true label][predicted label]
    per_label: list[LabelScore]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """A readable report: headline figures, per-label scores, then the confusion matrix."""
        lines = [
            f"examples {self.examples}   accuracy {self.accuracy:.4f}   "
            f"macro-F1 {self.macro_f1:.4f} (over labels true or predicted)",
            "",
        ]
        width = max(8, *(len(label) for label in self.labels))
        lines.append(f"{'label':<{width}}  precision  recall     f1  support")
        for s in self.per_label:
            lines.append(
                f"{s.label:<{width}}  {s.precision:9.4f}  {s.recall:6.4f}  "
                f"{s.f1:.4f}  {s.support:7d}"
            )
        lines.append("")
        if len(self.labels) > MAX_TABLE_CONFUSION_LABELS:
            lines.append(
                f"confusion matrix omitted for {len(self.labels)} labels (more than "
                f"{MAX_TABLE_CONFUSION_LABELS}); --json has it"
            )
        else:
            lines.append("confusion (rows: true, columns: predicted, in the label order above)")
            lines += [" ".join(f"{n:6d}" for n in row) for row in self.confusion]
        return "\n".join(lines)


def score(truth: list[str], predicted: list[str], labels: tuple[str, ...]) -> Scores:
    if len(truth) != len(predicted) or not truth:
        raise ValueError("score needs as many predictions as true labels, and at least one")
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted, strict=True):
        confusion[index[t]][index[p]] += 1
    per_label = [_label_score(label, i, confusion) for i, label in enumerate(labels)]
    # A label absent from the data but predicted still counts (F1 0): leaving it out would hide
    # its false positives, and macro-F1 could then exceed accuracy.
    occurring = set(truth) | set(predicted)
    averaged = [s for s in per_label if s.label in occurring]
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return Scores(
        accuracy=correct / len(truth),
        macro_f1=sum(s.f1 for s in averaged) / len(averaged),
        examples=len(truth),
        labels=labels,
        confusion=confusion,
        per_label=per_label,
    )


def _label_score(label: str, i: int, confusion: list[list[int]]) -> LabelScore:
    true_positive = confusion[i][i]
    predicted = sum(row[i] for row in confusion)
    support = sum(confusion[i])
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScore(label, precision, recall, f1, support)
