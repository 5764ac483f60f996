"""Predicting labels for many texts with one task: through the serving engine, or over HTTP."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from app.engine import Engine, Row
from app.task import TaskSpec
from app.tokenize import TextTokenizer

DEFAULT_MAX_TEXT_CHARS = 20_000


def predict_local(
    engine: Engine,
    spec: TaskSpec,
    texts: Sequence[str],
    batch_size: int = 64,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> list[str]:
    """Labels as the server would answer them: the same tokenizer cut, engine and precision."""
    predicted: list[str] = [""] * len(texts)
    for chunk, rows in _batches(engine, spec, texts, batch_size, max_text_chars):
        for i, row_logits in zip(chunk, engine.forward(rows), strict=True):
            predicted[i] = spec.labels[int(torch.argmax(row_logits))]
    return predicted


def served_features(
    engine: Engine,
    spec: TaskSpec,
    texts: Sequence[str],
    batch_size: int = 64,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> torch.Tensor:
    """Each text's pooled output under the task's prompt, as the server computes it before the
    head: fp32 [texts, hidden] on the CPU, in input order."""
    features = torch.empty(len(texts), engine.backbone.hidden_size)
    for chunk, rows in _batches(engine, spec, texts, batch_size, max_text_chars):
        features[torch.tensor(chunk)] = engine.pooled(rows).cpu()
    return features


def _batches(
    engine: Engine, spec: TaskSpec, texts: Sequence[str], batch_size: int, max_text_chars: int
) -> Iterator[tuple[list[int], list[Row]]]:
    """(input indices, their rows) in batches of similar length, as the server tokenizes them."""
    task = engine.to_device(spec, task="eval", version=0)
    tokenizer = TextTokenizer(engine.backbone.tokenizer, max_text_chars)
    tokenized = tokenizer(list(texts), engine.max_text_tokens(spec.prompt_len))
    order = sorted(range(len(texts)), key=lambda i: len(tokenized[i].input_ids))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        yield chunk, [Row(tokenized[i].input_ids, task) for i in chunk]


def predict_remote(
    url: str,
    task: str,
    texts: Sequence[str],
    token: str | None = None,
    version: int | None = None,
    batch_size: int = 64,
    timeout_s: float = 120.0,
) -> tuple[list[str], int]:
    """Labels from a running server's POST /classify; returns them and the version that answered."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    predicted: list[str] = []
    answered_version = 0
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s) as client:
        for start in range(0, len(texts), batch_size):
            inputs = list(texts[start : start + batch_size])
            body: dict[str, object] = {"task": task, "inputs": inputs}
            if version is not None:
                body["version"] = version
            response = client.post("/classify", json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:500]}")
            payload = response.json()
            answered_version = int(payload["version"])
            version = answered_version  # pinned: an activation mid-run must not mix versions
            predicted += [p["label"] for p in payload["predictions"]]
    return predicted, answered_version
