"""HTTP measurements: run the servers, load them in rounds, record throughput, latency, CPU use.

Both servers stay up for the whole run and take turns being measured, round after round, so a
slow spell of the machine hits every measurement alike. Each figure is the median round's, among
the rounds in which other processes left the CPU alone. An idle server uses no CPU; if it did,
the 'other CPU' column would show it.
"""

import argparse
import shutil
import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from cputime import NOISY_OTHER_CORES, CpuWindow, busiest_threads, wait_until_quiet
from loadgen import run_load
from servers import (
    ServerProcess,
    free_port,
    promptserve_command,
    scrape,
    textbook_command,
    upload_tasks,
)


@contextmanager
def promptserve(
    args: argparse.Namespace, work: Path, task_files: dict[str, Path]
) -> Iterator[ServerProcess]:
    """promptserve on a fresh registry, every task uploaded (so each is version 1)."""
    prompts_dir = work / "promptserve-prompts"
    shutil.rmtree(prompts_dir, ignore_errors=True)
    prompts_dir.mkdir()
    port = free_port()
    command = promptserve_command(
        port, prompts_dir, args.precision, args.backbone, args.device, args.server_arg
    )
    with ServerProcess(command, port, work / "promptserve.log") as server:
        server.wait_ready(args.ready_timeout)
        server.info = httpx.get(f"{server.base_url}/info", timeout=10).json()
        server.info["workers"] = _worker_plan(server)
        print(f"  promptserve /info: {server.info}")
        if server.info.get("precision") != args.precision:
            print(
                f"  WARNING: promptserve runs {server.info.get('precision')}, not {args.precision}"
            )
        upload_tasks(server.base_url, task_files)
        yield server


@contextmanager
def textbook(args: argparse.Namespace, work: Path) -> Iterator[ServerProcess]:
    port = free_port()
    command = textbook_command(port, work / "tasks", args.precision, args.backbone, args.device)
    with ServerProcess(command, port, work / "textbook.log") as server:
        server.wait_ready(args.ready_timeout)
        yield server


def _worker_plan(server: ServerProcess) -> str:
    """The server log's line on its model workers, e.g. '1 model worker(s), 16 torch thread(s)'."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    plan = [line.split(": ", 1)[-1] for line in lines if "model worker(s)" in line]
    return plan[-1] if plan else "unknown"


def measure_http(server: ServerProcess, bodies: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up for --warmup seconds (discarded), then measure for --duration seconds."""
    url = f"{server.base_url}/classify"
    _wait_for_quiet(args)
    load_options = (args.loadgen, args.loadgen_cpus, args.loadgen_procs)
    run_load(url, bodies, args.concurrency, args.warmup, *load_options)
    is_promptserve = bool(server.info)  # only promptserve answers /info and /metrics
    metrics_before = scrape(server.base_url) if is_promptserve else {}
    threads_before = server.thread_cpu_seconds()
    with CpuWindow(server.cpu_seconds) as cpu:
        load = run_load(url, bodies, args.concurrency, args.duration, *load_options)
    threads = busiest_threads(threads_before, server.thread_cpu_seconds(), cpu.wall_s)
    if load.ok == 0:
        raise RuntimeError(f"no 2xx responses: {load.statuses}, socket errors {load.socket_errors}")
    model_figures = (
        _model_figures(metrics_before, scrape(server.base_url), cpu.wall_s)
        if is_promptserve
        else {}
    )
    return {
        "throughput": load.requests_per_s,
        "p50_ms": load.p50_ms,
        "p99_ms": load.p99_ms,
        "failed": load.failed,
        "statuses": load.statuses,
        "duration_s": load.duration_s,
        "server_cores": cpu.cores(cpu.process_s),
        "loadgen_cores": cpu.cores(load.loadgen_cpu_s),
        "other_cores": cpu.cores(cpu.machine_s - cpu.process_s - load.loadgen_cpu_s),
        "busiest_threads_cores": threads,
        **model_figures,
    }


def _model_figures(before: dict[str, float], after: dict[str, float], wall_s: float) -> dict:
    """From promptserve's metrics over a window: the time its model workers spent in forwards
    per second, summed over workers (near the worker count: the model is the limit; well below:
    requests do not reach it fast enough), and the mean rows per batch."""
    change = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    batches = change.get("promptserve_batch_rows_count", 0.0)
    return {
        "forward_busy": change.get("promptserve_forward_seconds_sum", 0.0) / wall_s,
        "mean_batch_rows": change.get("promptserve_batch_rows_sum", 0.0) / batches
        if batches
        else None,
        "forwards_per_s": batches / wall_s,
    }


LABELS = {
    "promptserve_1_task": "(b) promptserve, 1 task",
    "promptserve_many_tasks": "(b) promptserve, {tasks} tasks mixed",
    "textbook_1_task": "(c) textbook batch-1 server, 1 task",
}
Measurement = tuple[str, ServerProcess, Path]  # key in LABELS, server, request bodies


def bench_http(
    args: argparse.Namespace,
    work: Path,
    task_files: dict[str, Path],
    bodies: dict[str, Path],
    results: dict[str, Any],
    raw: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """(b) promptserve with 1 task and with all tasks mixed, (c) textbook with 1 task; with
    `raw`, (a) again at the start of every round (the servers idle), its row then the median
    round's.

    Adds to `results` as it goes: the rows of the report, every round's sample ('samples') and
    promptserve's /info ('server_info').
    """
    rows: list[dict[str, Any]] = results["rows"]
    with ExitStack() as stack:
        plan, results["server_info"] = _start_servers(stack, args, work, task_files, bodies, rows)
        samples: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in plan}
        results["samples"] = samples
        for round_index in range(args.rounds):
            if raw is not None:
                samples.setdefault("backbone", []).append(_measure_raw(raw, args))
                print(f"  round {round_index + 1}, (a) raw backbone: "
                      f"{samples['backbone'][-1]['throughput']:.1f} rows/s")  # fmt: skip
            for measurement in list(plan):
                key, server, body_file = measurement
                label = LABELS[key].format(tasks=args.tasks)
                try:
                    sample = measure_http(server, body_file, args)
                except RuntimeError as error:
                    rows.append(_error_row(key, label, error))
                    plan.remove(measurement)
                    continue
                samples[key].append(sample)
                print(f"  round {round_index + 1}, {label}: {_describe(sample)}")
    for key, *_ in plan:
        rows.append(_median_row(key, LABELS[key].format(tasks=args.tasks), samples[key]))
    if raw is not None:
        first = next(row for row in rows if row["key"] == "backbone")
        median = _median_row("backbone", first["label"], samples["backbone"])
        first.update(median, first_rows_per_s=first["throughput"])


def _measure_raw(raw: Callable[[], dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    _wait_for_quiet(args)
    return raw()


def _wait_for_quiet(args: argparse.Namespace) -> None:
    waited = wait_until_quiet(args.quiet_timeout)
    if waited > 1:
        print(f"  waited {waited:.0f} s for the machine to go quiet")


def _start_servers(
    stack: ExitStack,
    args: argparse.Namespace,
    work: Path,
    task_files: dict[str, Path],
    bodies: dict[str, Path],
    rows: list[dict[str, Any]],
) -> tuple[list[Measurement], dict[str, Any]]:
    """The servers --parts asks for, stopped when `stack` closes: what to measure on them and
    promptserve's /info; an error row in `rows` for each that failed to start."""
    plan: list[Measurement] = []
    server_info: dict[str, Any] = {}
    if "promptserve" in args.parts:
        try:
            server = stack.enter_context(promptserve(args, work, task_files))
        except (RuntimeError, OSError, httpx.HTTPError) as error:
            rows.append(_error_row("promptserve", "(b) promptserve", error))
        else:
            server_info = server.info
            plan.append(("promptserve_1_task", server, bodies["one"]))
            plan.append(("promptserve_many_tasks", server, bodies["many"]))
    if "textbook" in args.parts:
        try:
            server = stack.enter_context(textbook(args, work))
        except (RuntimeError, OSError) as error:
            rows.append(_error_row("textbook", "(c) textbook", error))
        else:
            plan.append(("textbook_1_task", server, bodies["one"]))
    return plan, server_info


def _describe(sample: dict[str, Any]) -> str:
    """One round's figures in a line, with where the server's CPU went."""
    text = (
        f"{sample['throughput']:.1f} req/s, p50 {sample['p50_ms']:.1f} ms, "
        f"p99 {sample['p99_ms']:.1f} ms, server CPU {sample['server_cores']:.2f} "
        f"(busiest threads {sample['busiest_threads_cores']}), "
        f"loadgen CPU {sample['loadgen_cores']:.2f}, other CPU {sample['other_cores']:.2f}"
    )
    if sample.get("mean_batch_rows") is not None:
        text += (
            f"; model workers in forwards {100 * sample['forward_busy']:.0f} % of the time "
            f"(summed over workers), "
            f"{sample['mean_batch_rows']:.1f} rows per batch"
        )
    return text


def _median_row(key: str, label: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round among those no other process disturbed (among all, if every one was)."""
    clean = [sample for sample in samples if sample["other_cores"] <= NOISY_OTHER_CORES]
    middle = statistics.median_low(sample["throughput"] for sample in clean or samples)
    median = next(sample for sample in clean or samples if sample["throughput"] == middle)
    rounds = [sample["throughput"] for sample in samples]
    return {"key": key, "label": label, **median, "rounds": rounds, "clean_rounds": len(clean)}


def _error_row(key: str, label: str, error: Exception) -> dict[str, Any]:
    print(f"  {label} failed: {error}")
    return {"key": key, "label": label, "error": str(error)}
