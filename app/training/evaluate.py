"""Predicting labels for many texts with one task: through the serving engine, or over HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from app.engine import Engine, Row
from app.errors import RemoteError
from app.settings import setting_default
from app.task import TaskSpec
from app.tokenize import TextTokenizer

if TYPE_CHECKING:
    import httpx
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

OVERLOAD_TRIES = 5  # POSTs of one batch while the server answers 503, before giving up
MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After is waited for this long only


def predict_local(
    engine: Engine,
    spec: TaskSpec,
    texts: Sequence[str],
    batch_size: int = 64,
) -> list[str]:
    """Labels as the server would answer them: the same tokenizer cut, engine and precision."""
    predicted: list[str] = [""] * len(texts)
    for chunk, rows in _batches(engine, spec, texts, batch_size):
        for i, row_logits in zip(chunk, engine.forward(rows), strict=True):
            predicted[i] = spec.labels[int(torch.argmax(row_logits))]
    return predicted


def served_features(
    engine: Engine,
    spec: TaskSpec,
    texts: Sequence[str],
    batch_size: int = 64,
) -> torch.Tensor:
    """Each text's pooled output under the task's prompt, as the server computes it before the
    head: fp32 [texts, hidden] on the CPU, in input order."""
    features = torch.empty(len(texts), engine.backbone.hidden_size)
    for chunk, rows in _batches(engine, spec, texts, batch_size):
        features[torch.tensor(chunk)] = engine.pooled(rows).cpu()
    return features


def served_tokenizer(tokenizer: PreTrainedTokenizerBase) -> TextTokenizer:
    """The tokenizer as the server runs it: cut at its max_text_chars
    ($PROMPTSERVE_MAX_TEXT_CHARS, else the default)."""
    return TextTokenizer(tokenizer, int(setting_default("max_text_chars")))


def _batches(
    engine: Engine, spec: TaskSpec, texts: Sequence[str], batch_size: int
) -> Iterator[tuple[list[int], list[Row]]]:
    """(input indices, their rows) in batches of similar length, as the server tokenizes them."""
    task = engine.to_device(spec, task="eval", version=0)
    tokenizer = served_tokenizer(engine.backbone.tokenizer)
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
    overload_tries: int = OVERLOAD_TRIES,
) -> tuple[list[str], int]:
    """Labels from a running server's POST /classify; returns them and the version that answered.

    Fits the server's limits without being told them: a 413 (too many inputs) halves the batch,
    down to one text; a 503 (overloaded) is retried after its Retry-After, up to
    `overload_tries` tries in all."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    predicted: list[str] = []
    answered_version = 0
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s) as client:
        start = 0
        while start < len(texts):
            inputs = list(texts[start : start + batch_size])
            body: dict[str, object] = {"task": task, "inputs": inputs}
            if version is not None:
                body["version"] = version
            try:
                response = _post_classify(client, body, overload_tries)
            except httpx.TransportError as exc:  # unreachable, reset, timed out: name the server
                raise RemoteError(f"--url {url}: cannot reach the server ({exc})") from None
            if response.status_code == 413 and len(inputs) > 1:
                batch_size = len(inputs) // 2
                logger.info(
                    "%s refused %d texts per request (413); trying %d", url, len(inputs), batch_size
                )
                continue
            if response.status_code != 200:
                raise RemoteError(_refusal(url, response, overload_tries))
            payload = response.json()
            answered_version = int(payload["version"])
            version = answered_version  # pinned: an activation mid-run must not mix versions
            predicted += [p["label"] for p in payload["predictions"]]
            start += len(inputs)
    return predicted, answered_version


def _post_classify(client: httpx.Client, body: dict[str, object], tries: int) -> httpx.Response:
    """POST /classify, waiting out up to `tries - 1` 503 answers; returns the last answer."""
    for _ in range(tries - 1):
        response = client.post("/classify", json=body)
        if response.status_code != 503:
            return response
        wait_s = _retry_after_s(response)
        logger.info("server overloaded (503); retrying in %.1f s", wait_s)
        time.sleep(wait_s)
    return client.post("/classify", json=body)


def _retry_after_s(response: httpx.Response) -> float:
    """The answer's Retry-After in seconds, bounded; 1 s when absent or an HTTP date."""
    try:
        wait_s = float(response.headers.get("retry-after", "1"))
    except ValueError:
        wait_s = 1.0
    return min(max(wait_s, 0.0), MAX_RETRY_AFTER_S)


def _refusal(url: str, response: httpx.Response, overload_tries: int) -> str:
    reason = f"{url} answered {response.status_code}: {response.text[:500]}"
    if response.status_code == 413:
        return f"{reason} (even with one text per request)"
    if response.status_code == 503:
        return f"{reason} (still overloaded after {overload_tries} tries)"
    return reason
