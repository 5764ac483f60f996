"""Prometheus metrics (prefix promptserve_): definitions, and adapters from the core's stats."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.batch_types import BatchStats
from app.prompt_cache import CacheStats

OTHER_TASKS = "_other"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
RATIO_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


class Metrics:
    """Every metric of one app, in its own registry (so tests can build many apps)."""

    def __init__(self, task_label_cap: int) -> None:
        # No `_created` series beside each counter and histogram: they double what a scrape
        # holds and no dashboard here reads them (a process-wide switch of prometheus_client).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "promptserve_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "promptserve_request_latency_seconds",
            "HTTP request latency.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "promptserve_queue_wait_seconds",
            "Time a row waited in the queue.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "promptserve_batch_rows", "Rows per forward pass.", buckets=ROW_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "promptserve_batch_tokens",
            "Padded tokens per forward (prompt included).",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.padding_ratio = Histogram(
            "promptserve_padding_ratio",
            "Share of a batch's tokens that are padding.",
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.forward = Histogram(
            "promptserve_forward_seconds",
            "Time of one batched forward pass.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.expired_rows = Counter(
            "promptserve_deadline_expired_rows", "Rows dropped unrun: deadline passed.", registry=r
        )
        self.task_requests = Counter(
            "promptserve_task_requests",
            "Classify requests per task (capped).",
            ["task"],
            registry=r,
        )
        self.info = Info("promptserve_backbone", "Backbone, device and precision.", registry=r)
        self._task_label_cap = task_label_cap
        self._labelled_tasks: set[str] = set()

    # ---- adapters the core calls (it never imports this module) ---------------------------
    def batch_done(self, stats: BatchStats) -> None:
        self.batch_rows.observe(stats.rows)
        self.batch_tokens.observe(stats.padded_tokens)
        self.padding_ratio.observe(1.0 - stats.real_tokens / stats.padded_tokens)
        self.forward.observe(stats.forward_s)
        for wait in stats.queue_waits_s:
            self.queue_wait.observe(wait)

    def expired(self, rows: int) -> None:
        self.expired_rows.inc(rows)

    def count_task(self, task: str) -> None:
        """At most `task_label_cap` tasks get their own label; the rest count under `_other`."""
        if task not in self._labelled_tasks:
            if len(self._labelled_tasks) >= self._task_label_cap:
                task = OTHER_TASKS
            else:
                self._labelled_tasks.add(task)
        self.task_requests.labels(task=task).inc()

    def watch(
        self,
        queue_depth: Callable[[], int],
        registered_tasks: Callable[[], int],
        cache_stats: Callable[[], CacheStats],
    ) -> None:
        """Gauges and cache counters read from the core at scrape time."""
        self.registry.register(_CoreCollector(queue_depth, registered_tasks, cache_stats))


class _CoreCollector(Collector):
    def __init__(
        self,
        queue_depth: Callable[[], int],
        registered_tasks: Callable[[], int],
        cache_stats: Callable[[], CacheStats],
    ) -> None:
        self._queue_depth = queue_depth
        self._registered_tasks = registered_tasks
        self._cache_stats = cache_stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._cache_stats()
        yield GaugeMetricFamily(
            "promptserve_queue_depth", "Rows waiting for the model.", value=self._queue_depth()
        )
        yield GaugeMetricFamily(
            "promptserve_registered_tasks", "Tasks in the registry.", value=self._registered_tasks()
        )
        yield GaugeMetricFamily(
            "promptserve_resident_prompts",
            "Task versions in the device cache.",
            value=stats.resident,
        )
        yield GaugeMetricFamily(
            "promptserve_resident_prompt_bytes",
            "Bytes of the device cache.",
            value=stats.resident_bytes,
        )
        yield CounterMetricFamily(
            "promptserve_prompt_cache_hits", "Device cache hits.", value=stats.hits
        )
        yield CounterMetricFamily(
            "promptserve_prompt_cache_misses",
            "Device cache misses (disk loads).",
            value=stats.misses,
        )
        yield CounterMetricFamily(
            "promptserve_prompt_cache_evictions", "Device cache evictions.", value=stats.evictions
        )
