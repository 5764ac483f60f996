"""Where (b)'s gap to (a) goes: (b)'s workload without HTTP, then its batches without a server.

    python bench/no_http.py [--seconds 15] [--concurrency 128] [--rounds 3] [--json OUT]

Measured one after another in this process, with the server's own settings and code:

1. **service**: `--concurrency` single-text classify calls kept in flight through the real
   services (tokenizer thread, batcher, model worker threads, engine): (b) minus uvicorn, FastAPI
   and JSON. The batches it forms are recorded, each row's length included.
2. **replay**: those batches, the same rows' lengths, run back to back through `Engine.forward`
   on the same worker layout (on CPU, 2 threads of 1 torch thread): the engine with no server.
3. **fixed**: as many batches of (a)'s shape (32 rows of prompt + the texts' mean length, one
   length): (a) through the engine.
4. **raw**: the backbone alone on inputs of that shape, the same threads: (a) itself.

Ratios: service / replay is what the batcher, the tokenizer and the threads around the model
cost; replay / fixed is what real text lengths and padding cost; fixed / raw is the engine's own
cost (gathering prompts, pooling, heads). The HTTP layer's own cost is
(b) from run_bench.py against `service`, measured in the same minutes (this VM drifts by 10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workload import generate_texts, prompt_file  # noqa: E402

from app.api.app import build_services, warm_up_rows  # noqa: E402
from app.backbone import load_backbone  # noqa: E402
from app.engine import Engine, Row  # noqa: E402
from app.metrics import Metrics  # noqa: E402
from app.registry import Registry  # noqa: E402
from app.serve import SWITCH_INTERVAL_S  # noqa: E402
from app.settings import Settings  # noqa: E402

TASK = "bench-000"


async def service_rate(
    settings: Settings, backbone: Any, texts: list[str], seconds: float, concurrency: int
) -> tuple[float, list[list[int]]]:
    """Requests/s through the services, and every batch's row lengths during the window."""
    services = build_services(settings, backbone, Metrics(settings.task_metric_cap))
    recording: list[list[int]] = []
    run_batch = services.batcher._run_batch  # bench only: record what the workers compute

    def recorded(rows: list[Row]) -> Any:
        if measuring:
            recording.append([len(row.input_ids) for row in rows])
        return run_batch(rows)

    services.batcher._run_batch = recorded
    services.batcher.start()
    rows = warm_up_rows(services.classify)
    await services.batcher.call_in_workers(lambda: services.classify.engine.forward(rows))
    measuring, stop, done = False, False, 0

    async def client(first: int) -> None:
        nonlocal done
        index = first
        while not stop:
            await services.classify.classify(TASK, [texts[index % len(texts)]])
            done += 1
            index += concurrency

    clients = [asyncio.create_task(client(i)) for i in range(concurrency)]
    await asyncio.sleep(3)  # warm-up: batches grow to their steady size
    measuring, started_done, started = True, done, time.perf_counter()
    await asyncio.sleep(seconds)
    measuring, rate = False, (done - started_done) / (time.perf_counter() - started)
    stop = True
    await asyncio.gather(*clients)
    await services.batcher.stop()
    services.classify.close()
    return rate, recording


def replay_rate(
    engine: Engine, task: Any, batches: list[list[int]], workers: int, raw: bool = False
) -> float:
    """Rows/s of these batches' shapes through Engine.forward (or, `raw`, the backbone alone on
    [rows, prompt + length] inputs), `workers` threads at once."""
    built = [[Row([101] + [2000 + n % 97] * (n - 2) + [102], task) for n in b] for b in batches]
    rates: list[float] = []
    backbone, seq = engine.backbone, task.prompt_len

    def run(batch: list[Row]) -> None:
        if not raw:
            engine.forward(batch)
            return
        shape = (len(batch), seq + max(len(row.input_ids) for row in batch))
        embeds = torch.zeros(*shape, backbone.hidden_size, dtype=task.prompt.dtype)
        with torch.inference_mode():
            mask = torch.ones(shape, dtype=torch.long, device=backbone.device)
            backbone.encode(embeds.to(backbone.device), mask)

    def worker(k: int) -> None:
        if backbone.device.type == "cpu":
            torch.set_num_threads(1)  # the server's CPU layout: one torch thread a worker
        mine = built[k::workers]
        for batch in mine[:2]:
            run(batch)
        rows, started = 0, time.perf_counter()
        for batch in mine:
            run(batch)
            rows += len(batch)
        rates.append(rows / (time.perf_counter() - started))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(rates)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-len", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as the server runs
    registry = Path(tempfile.mkdtemp(prefix="no-http-"))
    settings = Settings(prompts_dir=registry)
    backbone = load_backbone(
        settings.backbone, settings.device, settings.precision, settings.attention, settings.trace
    )
    task_file = prompt_file(args.prompt_len, backbone.hidden_size, ["negative", "positive"], 0)
    tasks = Registry(registry, backbone.identity, backbone.max_prompt_len)
    tasks.load()
    tasks.add_version(TASK, task_file)
    texts = generate_texts(1000, 0)
    engine = Engine(backbone)
    task = engine.to_device(tasks.read_spec(TASK, 1), TASK, 1)
    workers = 2 if backbone.device.type == "cpu" else 1
    mean_len = round(statistics.mean(len(backbone.tokenizer(t)["input_ids"]) for t in texts))
    results: dict[str, list[float]] = {"service": [], "replay": [], "fixed": [], "raw": []}
    for round_ in range(args.rounds):
        rate, batches = asyncio.run(
            service_rate(settings, backbone, texts, args.seconds, args.concurrency)
        )
        results["service"].append(rate)
        results["replay"].append(replay_rate(engine, task, batches, workers))
        fixed = [[mean_len] * 32 for _ in range(sum(map(len, batches)) // 32)]
        results["fixed"].append(replay_rate(engine, task, fixed, workers))
        results["raw"].append(replay_rate(engine, task, fixed, workers, raw=True))
        rows = sum(map(len, batches))
        print(
            f"round {round_ + 1}: service {rate:.1f} req/s ({len(batches)} batches, "
            f"{rows / len(batches):.1f} rows each); replay {results['replay'][-1]:.1f} rows/s; "
            f"fixed (32 x {mean_len} tokens) {results['fixed'][-1]:.1f} rows/s; "
            f"raw {results['raw'][-1]:.1f} rows/s",
            flush=True,
        )
    medians = {key: statistics.median(values) for key, values in results.items()}
    ratios = {
        "service/replay": medians["service"] / medians["replay"],
        "replay/fixed": medians["replay"] / medians["fixed"],
        "fixed/raw": medians["fixed"] / medians["raw"],
        "service/raw": medians["service"] / medians["raw"],
    }
    print("medians:", {k: round(v, 1) for k, v in medians.items()})
    print("ratios:", {k: round(v, 3) for k, v in ratios.items()})
    if args.json:
        payload = {"rounds": results, "medians": medians, "ratios": ratios, "cpus": os.cpu_count()}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
