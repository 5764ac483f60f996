"""The composition root: `create_app(settings)` builds the FastAPI app and wires every service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable

import torch
from fastapi import FastAPI

from app import __version__
from app.api import classify, health, prompts
from app.api.admission import QueueGate
from app.api.body_limit import BodyLimit
from app.api.deps import Services
from app.api.drain import Drain, DrainGate
from app.api.errors import install_error_handlers
from app.api.request_metrics import RequestMetrics
from app.backbone import Backbone, batch_padding, load_backbone, plan_workers
from app.batch_types import Admission, BatchLimits
from app.batcher import Batcher
from app.engine import DeviceTask, Engine, Row
from app.errors import PromptserveError
from app.metrics import Metrics
from app.prompt_admin import PromptAdmin
from app.prompt_cache import PromptCache
from app.registry import Registry
from app.service import ClassifyService
from app.settings import Settings
from app.task import POOLINGS, TaskSpec
from app.tokenize import TextTokenizer
from app.upload_check import ComputesCheck

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    backbone: Backbone | None = None,
    on_load_failure: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The app answers /healthz at once and turns ready when the backbone is loaded and warm.

    Pass a loaded `backbone` to share one between apps (tests); `on_load_failure` lets the CLI
    stop the process when the backbone cannot be loaded.
    """
    metrics = Metrics(settings.task_metric_cap)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.create_task(_start(app, settings, metrics, backbone, on_load_failure))
        try:
            yield
        finally:
            loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
            app.state.ready = False
            services: Services | None = app.state.services
            if services is not None:
                await services.batcher.stop()
                services.classify.close()

    app = FastAPI(
        title="promptserve",
        version=__version__,
        summary="Many prompt-tuned text classifiers, one frozen backbone, mixed-task batches.",
        lifespan=lifespan,
        redirect_slashes=False,  # '/classify/' is a 404, not a redirect built from the Host header
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.services = None
    app.state.ready = False
    app.state.not_ready_reason = "the backbone is loading"
    app.state.drain = Drain(settings.drain_grace_s)  # begun by the server on SIGTERM
    install_error_handlers(app)
    routers = (classify.router, prompts.router, health.router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(QueueGate, admit=lambda: _admit(app), body_timeout_s=settings.body_timeout_s)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_request_bytes, upload_bytes=settings.max_upload_bytes
    )
    app.add_middleware(DrainGate, drain=app.state.drain)
    # Added last, so outermost: requests that BodyLimit refuses (413) are counted too.
    app.add_middleware(
        RequestMetrics, metrics=metrics, routes=[r for router in routers for r in router.routes]
    )
    if settings.admin_token is None:
        log.warning("no admin token configured: upload, activate and delete are open to anyone")
    return app


def _admit(app: FastAPI) -> Admission | str | None:
    services: Services | None = app.state.services
    if services is None:
        return None
    admission = services.batcher.admit()
    if admission is None:
        return f"queue full ({services.batcher.limits.queue_limit} rows waiting or admitted)"
    return admission


async def _start(
    app: FastAPI,
    settings: Settings,
    metrics: Metrics,
    backbone: Backbone | None,
    on_load_failure: Callable[[BaseException], None] | None,
) -> None:
    try:
        if backbone is None:
            backbone = await asyncio.to_thread(
                load_backbone,
                settings.backbone,
                settings.device,
                settings.precision,
                settings.attention,
                settings.trace,
            )
        services = await asyncio.to_thread(build_services, settings, backbone, metrics)
        app.state.services = services  # from here on, shutdown stops its workers
        services.batcher.start()
        rows = warm_up_rows(services.classify)
        await services.batcher.call_in_workers(lambda: services.classify.engine.forward(rows))
    except Exception as exc:  # a traceback only where it is not a configuration problem
        known = isinstance(exc, ValueError | OSError | PromptserveError)
        log.critical("cannot start: %s", exc, exc_info=not known)
        app.state.not_ready_reason = f"startup failed: {exc}"
        if on_load_failure is not None:
            on_load_failure(exc)
        return
    app.state.ready = True
    log.info("ready: %d tasks registered", len(services.registry.task_ids()))


def build_services(settings: Settings, backbone: Backbone, metrics: Metrics) -> Services:
    """Registry, cache, batcher and service over one loaded backbone (workers not started)."""
    engine = Engine(backbone)
    registry = Registry(settings.prompts_dir, backbone.identity, backbone.max_prompt_len)
    registry.load()

    def load_task(key: tuple[str, int, str]) -> DeviceTask:
        task, version, sha256 = key
        return engine.to_device(registry.read_spec(task, version, sha256), task, version)

    cache = PromptCache(settings.cache_bytes, load_task)
    workers, threads = plan_workers(
        backbone.device, settings.model_workers, settings.threads_per_worker
    )
    limits = BatchLimits(
        max_batch_size=settings.max_batch_size,
        max_batch_tokens=settings.max_batch_tokens,
        max_padding=batch_padding(backbone.device, settings.max_batch_padding),
        max_wait_s=settings.max_wait_ms / 1000,
        queue_limit=settings.queue_limit,
        workers=workers,
    )
    log.info(
        "%d model worker(s), %d torch thread(s) each; batches of up to %d rows, padding <= %g",
        workers,
        threads,
        limits.max_batch_size,
        limits.max_padding,
    )
    batcher: Batcher[Row, torch.Tensor] = Batcher(
        engine.forward, limits, observer=metrics, worker_init=lambda: _init_worker(threads)
    )
    tokenizer = TextTokenizer(backbone.tokenizer, settings.max_text_chars)
    service = ClassifyService(
        engine, registry, cache, batcher, tokenizer, settings.request_timeout_s
    )
    metrics.watch(lambda: batcher.depth, lambda: len(registry.task_ids()), cache.stats)
    metrics.info.info(
        {
            "backbone": backbone.identity.name,
            "fingerprint": backbone.identity.fingerprint,
            "device": str(backbone.device),
            "precision": backbone.precision,
        }
    )
    admin = PromptAdmin(registry, cache, ComputesCheck(engine, tokenizer))
    return Services(backbone, registry, service, admin, batcher)


# The lowest priority short of SCHED_IDLE (which would starve the model whenever anything else
# wants the CPU). Measured at 10x overload on 2 cores (RELIABILITY.md): niceness 5 left refusals
# with a p99 of 55-370 ms, 19 with 34-47 ms, at the same answered throughput.
WORKER_NICENESS = 19


def _init_worker(threads: int) -> None:
    """On a model worker's thread. Under overload the model threads would take every core and
    starve the event loop, which must keep refusing excess requests fast: they yield to it. When
    the machine is otherwise idle, priority changes nothing: the model gets every free cycle."""
    torch.set_num_threads(threads)
    with contextlib.suppress(OSError, AttributeError):  # Linux: this thread only
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


def warm_up_rows(service: ClassifyService) -> list[Row]:
    """Rows through every pooling path, so that no request pays a first call's costs.

    Tokenized here, once: each model worker then runs them (the tokenizer is not re-entrant).
    """
    engine = service.engine
    hidden = engine.backbone.hidden_size
    ids = service.tokenizer(["warming up the backbone"], max_tokens=32)[0].input_ids
    rows = []
    for pooling in POOLINGS:
        spec = TaskSpec(
            torch.zeros(4, hidden), torch.zeros(2, hidden), torch.zeros(2), ("a", "b"), pooling
        )
        rows.append(Row(ids, engine.to_device(spec, "warmup", 0)))
    return rows
