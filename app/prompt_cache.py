"""The device cache: active tasks' prompts and heads on the backbone's device, LRU by bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.engine import DeviceTask

# (task, version, sha256 of its file). Versions are immutable, but a task deleted and uploaded
# again numbers its versions from 1 again: the hash keeps the old task's tensors from serving.
Key = tuple[str, int, str]


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    resident: int
    resident_bytes: int


class PromptCache:
    """Loads on a miss (call `get` off the event loop, not on a model worker), evicts least
    recently used past its byte budget.

    An evicted task that a queued request still holds stays alive through that reference, so
    eviction never breaks a request in flight; the budget bounds what the cache keeps.
    """

    def __init__(self, budget_bytes: int, load: Callable[[Key], DeviceTask]) -> None:
        self.budget_bytes = budget_bytes
        self._load = load
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, DeviceTask] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0
        self._discards = 0  # a load that began before a discard is served, not kept

    def peek(self, key: Key) -> DeviceTask | None:
        """The cached entry, counted as a hit, or None (not counted: `get` will count the miss)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
            return entry

    def get(self, key: Key) -> DeviceTask:
        """Cached entry or a fresh load from disk; blocking, so keep it off the event loop."""
        entry = self.peek(key)
        if entry is not None:
            return entry
        with self._lock:
            discards = self._discards
        loaded = self._load(key)
        with self._lock:
            self._misses += 1
            existing = self._entries.get(key)
            if existing is not None:  # another thread loaded it meanwhile
                return existing
            if self._discards != discards:  # maybe deleted while it loaded: serve, don't keep
                return loaded
            self._entries[key] = loaded
            self._bytes += loaded.nbytes
            self._evict_over_budget()
        return loaded

    def discard(self, task: str, version: int | None = None) -> None:
        """Forget a deleted version (or every version of a deleted task)."""
        with self._lock:
            self._discards += 1
            for key in [k for k in self._entries if k[0] == task and version in (None, k[1])]:
                self._bytes -= self._entries.pop(key).nbytes

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits, self._misses, self._evictions, len(self._entries), self._bytes
            )

    def _evict_over_budget(self) -> None:
        while self._bytes > self.budget_bytes and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes
            self._evictions += 1
