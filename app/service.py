"""The classification service: from (task, texts) to labelled predictions, through the batcher."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from app.batch_types import Admission
from app.batcher import Batcher
from app.engine import DeviceTask, Engine, Row
from app.errors import InvalidPrompt, InvalidRequest, VersionNotFound, listed
from app.prompt_cache import PromptCache
from app.registry import Registry
from app.tokenize import TextTokenizer, Tokenized
from app.versions import VersionInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float] | None


@dataclass(frozen=True)
class Classification:
    task: str
    version: int
    predictions: list[Prediction]
    truncated: list[bool]


class ClassifyService:
    """Resolves a task version, tokenizes off the event loop, queues rows, reads out the heads."""

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        cache: PromptCache,
        batcher: Batcher[Row, torch.Tensor],
        tokenizer: TextTokenizer,
        timeout_s: float,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.cache = cache
        self.batcher = batcher
        self.tokenizer = tokenizer
        self.timeout_s = timeout_s
        # HF fast tokenizers are not re-entrant: one thread tokenizes, in batches.
        self._tokenizer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenizer")

    async def classify(
        self,
        task: str,
        texts: list[str],
        version: int | None = None,
        all_scores: bool = False,
        admission: Admission | None = None,
    ) -> Classification:
        """`admission`: the queue place the request was given at the door, if it was given one."""
        if not texts:
            raise InvalidRequest("inputs must hold at least one text")
        # overloaded: refuse before tokenizing, not after
        self.batcher.check_room(len(texts))
        info, device_task = await self._resolve(task, version)
        loop = asyncio.get_running_loop()
        max_tokens = self.engine.max_text_tokens(device_task.prompt_len)
        tokenized = await loop.run_in_executor(
            self._tokenizer_thread, self.tokenizer, texts, max_tokens
        )
        _check_not_empty(tokenized)
        rows = [Row(t.input_ids, device_task) for t in tokenized]
        lengths = [row.length for row in rows]
        logits = await self.batcher.submit(rows, lengths, self.timeout_s, admission)
        stacked = torch.stack(logits)  # [rows, L]: one task, so its rows stack
        if not bool(torch.isfinite(stacked).all()):
            raise InvalidPrompt(
                f"task {info.task!r} version {info.version} gives non-finite scores for this "
                f"input: its prompt or head values overflow the backbone "
                f"({self.engine.backbone.precision}); upload a version with smaller values"
            )
        predictions = _predictions(device_task.labels, stacked, all_scores)
        return Classification(
            info.task, info.version, predictions, [t.truncated for t in tokenized]
        )

    async def _resolve(self, task: str, version: int | None) -> tuple[VersionInfo, DeviceTask]:
        """The version to use and its tensors, pinned from here on: in-flight work keeps them.

        A request for the active version whose version is deleted before its tensors are loaded
        (a roll forward and clean-up racing with it) takes the version active now instead: it
        asked for whichever is active, and its answer says which it got."""
        info = self.registry.resolve(task, version)
        try:
            return info, await self._device_task(info)
        except VersionNotFound:
            if version is not None:
                raise
        info = self.registry.resolve(task)
        return info, await self._device_task(info)

    async def _device_task(self, info: VersionInfo) -> DeviceTask:
        """A cache hit costs nothing; a miss loads from disk in a thread, never in the worker."""
        key = (info.task, info.version, info.sha256)
        cached = self.cache.peek(key)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self.cache.get, key)

    def close(self) -> None:
        self._tokenizer_thread.shutdown(wait=False)


def _predictions(
    labels: tuple[str, ...], logits: torch.Tensor, all_scores: bool
) -> list[Prediction]:
    """One softmax and argmax over the request's rows [rows, L], not one per row."""
    probs = torch.softmax(logits, dim=-1)  # [rows, L]
    return [
        Prediction(
            labels[best], row[best], dict(zip(labels, row, strict=True)) if all_scores else None
        )
        for best, row in zip(probs.argmax(dim=-1).tolist(), probs.tolist(), strict=True)
    ]


def _check_not_empty(tokenized: list[Tokenized]) -> None:
    """An empty or blank text would be classified from the prompt alone, with a confident label
    that says nothing about it: refused instead, by position."""
    empty = [i for i, t in enumerate(tokenized) if t.empty]
    if empty:
        raise InvalidRequest(
            f"inputs[{listed(empty)}]: nothing to classify (empty, blank, or only characters the "
            f"tokenizer drops)"
        )
