"""Running the HTTP server: uvicorn, with a graceful drain on SIGTERM (and Ctrl-C).

On the first signal the server keeps listening but admits no new work (/readyz turns 503), lets
the requests in flight finish for up to `drain_grace_s`, then shuts down and exits 0. Past the
grace period the requests still waiting are failed with 503 rather than dropped. A second signal
stops at once.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from app.api.drain import Drain

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app
        self.drain: Drain = app.state.drain
        self.frozen = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining or not self.started:  # a second signal, or still starting
            super().handle_exit(sig, frame)
            self.force_exit = self.drain.draining
            return
        log.info(
            "%s: draining; %d request(s) in flight get up to %gs to finish",
            signal.Signals(sig).name,
            self.drain.in_flight,
            self.drain.grace_s,
        )
        self.drain.begin()

    async def on_tick(self, counter: int) -> bool:
        if not self.frozen and self.app.state.ready:
            freeze_startup_heap()
            self.frozen = True
        if self.drain.draining and not self.should_exit:
            if self.drain.in_flight == 0:
                log.info("drained: every admitted request is answered; shutting down")
                self.should_exit = True
            elif self.drain.expired:
                log.warning(
                    "drain grace of %gs is over with %d request(s) in flight: failing them (503)",
                    self.drain.grace_s,
                    self.drain.in_flight,
                )
                await self._fail_remaining_work()
                self.should_exit = True
        return await super().on_tick(counter)

    async def _fail_remaining_work(self) -> None:
        services = self.app.state.services
        if services is not None:
            await services.batcher.stop()  # queued and computing rows fail with ShuttingDown


# Interpreter settings for a server whose one event loop must stay responsive while model threads
# run beside it. Each was measured at 10x overload on 2 cores (RELIABILITY.md, "Overload"):
# - the GIL's switch interval (5 ms by default) is how long the event loop can wait on a model
#   thread's Python code: 1 ms took the refusals' p99 from 234 ms to 39 ms. It is also how long
#   a model thread waits to win the GIL back from the HTTP thread after each torch call: at
#   0.2 ms the CPU left idle at saturation fell from 0.07 to 0.04 cores (BENCHMARKS.md), with
#   the refusals' p99 unchanged (41-42 ms). Shorter (0.1, 0.05 ms) left the model threads
#   queueing on the batcher's lock behind a preempted HTTP thread;
# - a full garbage collection walks every tracked object and stops the loop: with torch and the
#   model loaded it took 150-230 ms every few seconds. After start-up the heap is frozen out of
#   the collector's view (gc.freeze), and full collections run 10x less often.
SWITCH_INTERVAL_S = 0.0002
GC_THRESHOLDS = (700, 10, 100)  # Python's defaults are (700, 10, 10)


def freeze_startup_heap() -> None:
    """Once the backbone is loaded and warm: what is alive now lives as long as the process."""
    gc.collect()
    gc.freeze()
    log.info("froze %d start-up objects out of the garbage collector", gc.get_freeze_count())


def run_server(app: FastAPI, host: str, port: int, log_level: str) -> None:
    """Serve until drained after a signal (uvicorn exits the process if it cannot bind)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.set_threshold(*GC_THRESHOLDS)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    DrainingServer(config, app).run()
