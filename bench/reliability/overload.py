"""Overload: open-loop single-text /classify traffic at about 10x the server's capacity.

    python bench/reliability/overload.py --rate 2500 --seconds 20

Starts a real server (default backbone and settings) on loopback, uploads a task, then sends
`rate` requests a second, a share of whose clients give up and disconnect before their answer.
Reports: the server stays up; its resident memory over the run; 503s come fast and carry
Retry-After; admitted requests finish within the deadline; rows computed for clients that left.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadclient import Client, Outcome, RequestMaker, open_loop, percentile, run  # noqa: E402
from server import SENTENCES, RssSampler, metric_sum, rss_mib, running_server, upload  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2500.0, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--leave-share", type=float, default=0.02, help="clients that give up")
    parser.add_argument("--leave-after-s", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--serve-flags", default="", help="extra `promptserve serve` flags")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as work,
        running_server(Path(work), *args.serve_flags.split()) as (process, base),
    ):
        upload(base, "sentiment", seed=1)
        timeout_s = 30.0  # the server's default request deadline
        rng = random.Random(0)
        bodies = [json.dumps({"task": "sentiment", "inputs": s}).encode() for s in SENTENCES]

        def make(i: int) -> tuple[str, str, bytes, float | None]:
            leave = args.leave_after_s if rng.random() < args.leave_share else None
            return "POST", "/classify", bodies[i % len(bodies)], leave

        rows_before = metric_sum(base, "promptserve_batch_rows_sum")
        rss_before = rss_mib(process.pid)
        client = Client("127.0.0.1", int(base.rsplit(":", 1)[1]))
        with RssSampler(process.pid) as rss:
            started = time.perf_counter()
            outcomes = run(load(client, args.rate, args.seconds, make))
            wall = time.perf_counter() - started
        time.sleep(1.0)  # let the last forwards land in the metrics
        alive = process.poll() is None and _ready(base)
        rows_computed = metric_sum(base, "promptserve_batch_rows_sum") - rows_before
        figures = summarize(outcomes, args, wall, timeout_s, rss.samples, rss_before)
        figures.update(
            server_alive_after=alive,
            connections_opened=client.opened,
            rows_computed=rows_computed,
            rows_answered=sum(o.rows for o in outcomes if o.status == 200),
            disconnected_499=metric_sum(base, "promptserve_requests_total", status="499"),
        )
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    return 0 if figures["server_alive_after"] else 1


async def load(client: Client, rate: float, seconds: float, make: RequestMaker) -> list[Outcome]:
    try:
        return await open_loop(client, rate, seconds, make)
    finally:
        client.close()


def _ready(base: str) -> bool:
    import httpx

    return httpx.get(f"{base}/readyz", timeout=5).status_code == 200


def summarize(
    outcomes: list[Outcome],
    args: argparse.Namespace,
    wall: float,
    timeout_s: float,
    rss: list[tuple[float, float]],
    rss_before: float,
) -> dict:
    statuses = Counter(o.status for o in outcomes)
    ok = [o.latency_s * 1000 for o in outcomes if o.status == 200]
    rejected = [o for o in outcomes if o.status == 503]
    rejected_ms = [o.latency_s * 1000 for o in rejected]
    return {
        "offered_rate": args.rate,
        "seconds": args.seconds,
        "requests": len(outcomes),
        "wall_s": round(wall, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "ok_per_s": round(len(ok) / wall, 1),
        "ok_ms": _spread(ok),
        "ok_over_deadline": sum(1 for ms in ok if ms > timeout_s * 1000),
        "rejected_ms": _spread(rejected_ms),
        "rejected_without_retry_after": sum(1 for o in rejected if not o.retry_after),
        "rejected_p99_ms_by_second": _p99_by_second(outcomes, args.rate),
        "rss_mib": {
            "before": round(rss_before, 1),
            "peak": round(max(m for _, m in rss), 1) if rss else None,
            "end": round(rss[-1][1], 1) if rss else None,
        },
    }


def _p99_by_second(outcomes: list[Outcome], rate: float) -> list[float]:
    """p99 of the rejections due in each second of the run (request i is due at i / rate)."""
    seconds: dict[int, list[float]] = {}
    for i, outcome in enumerate(outcomes):
        if outcome.status == 503:
            seconds.setdefault(int(i / rate), []).append(outcome.latency_s * 1000)
    return [round(percentile(seconds[s], 99), 1) for s in sorted(seconds)]


def _spread(ms: list[float]) -> dict[str, float] | None:
    if not ms:
        return None
    return {
        "p50": round(percentile(ms, 50), 1),
        "p99": round(percentile(ms, 99), 1),
        "max": round(max(ms), 1),
    }


if __name__ == "__main__":
    sys.exit(main())
