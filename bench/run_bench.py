"""Benchmark promptserve against the raw backbone and a textbook batch-1 server, in one run.

Measures, one after another, so that no two share the CPU:
  (a) raw backbone: back-to-back forwards of inputs_embeds [batch, prompt_len + tokens, hidden],
      at the best of --batch-sizes (rows/s);
  (b) promptserve (python -m app.cli serve) over HTTP: single-text POST /classify requests from
      --concurrency keep-alive connections, for 1 task and for --tasks tasks mixed uniformly
      (requests/s, p50/p99 latency);
  (c) bench/textbook_server.py, each request a batch-1 forward, same load, 1 task.
Then prints the ratios (b,1)/(a), (b,100)/(b,1) and (b,1)/(c) against their targets.
Batch-1 forwards swing by up to 30% from minute to minute on a 2-vCPU VM; --rounds 3 measures
(b) and (c) in turn three times and keeps each one's median round.

The load generator is wrk with one thread (apt-get install -y wrk), else a lean asyncio
client (--loadgen-procs of them, where there are cores to spare). It is not pinned by default:
pinning it alone reserves nothing on 2 cores, and pinning the server away from it would halve
the server. Its CPU use is measured and printed instead.

    python bench/run_bench.py                      # full run, ~3 minutes
    python bench/run_bench.py --duration 5 --warmup 2 --json /tmp/bench.json

On a GPU (--device cuda; bench/gpu/run.sh runs it so): one model worker, the raw loop on the GPU,
texts of --text-tokens tokens, and promptserve's batch limits raised with --server-arg.
"""

import argparse
import gc
import json
import logging
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from backbone_bench import DTYPES, load_backbone, measure_backbone, rows_per_second, token_lengths
from cputime import CpuWindow
from http_bench import bench_http
from loadgen import choose_tool
from report import machine_facts, print_report, ratios
from transformers import PreTrainedModel
from workload import generate_texts, read_jsonl, task_names, write_bodies, write_task_files

from app.backbone import resolve_source
from app.settings import DEFAULT_BACKBONE

PARTS = ("backbone", "promptserve", "textbook")
BODY_COUNT = 5000  # request bodies per file; the load generator cycles through them


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    add = parser.add_argument
    add("--precision", choices=sorted(DTYPES), default="bf16", help="backbone dtype, all parts")
    add("--backbone", default=DEFAULT_BACKBONE, help="HF dir or id")
    add(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="all parts; auto: CUDA if present",
    )
    add("--prompt-len", type=int, default=20, help="prompt vectors per task (m)")
    add("--tasks", type=int, default=100, help="tasks uploaded and mixed in (b)")
    add("--concurrency", type=int, default=128, help="keep-alive connections (128 saturates here)")
    add("--duration", type=float, default=20, help="seconds per measurement")
    add("--warmup", type=float, default=5, help="seconds of discarded load before each (b), (c)")
    add("--rounds", type=int, default=1, help="(b), (c) measured in turn this often; medians kept")
    add("--batch-sizes", default="8,16,32,64", help="batch sizes (a) tries")
    add("--sweep-seconds", type=float, default=3, help="seconds per batch size tried in (a)")
    add("--data", type=Path, help='JSONL of {"text","label"} rows; default: generated sentences')
    add("--num-texts", type=int, default=1000, help="sentences generated when no --data")
    add("--text-tokens", type=int, help="generated texts of this many tokens; default 12-27")
    add("--seed", type=int, default=0, help="seed for texts, request bodies and prompts")
    add("--loadgen", choices=("auto", "wrk", "asyncio"), default="auto", help="auto: wrk if found")
    add("--loadgen-cpus", help="taskset CPU list to pin wrk to, e.g. 1; default: not pinned")
    add("--loadgen-procs", type=int, default=1, help="asyncio load generator processes")
    add("--quiet-timeout", type=float, default=120, help="most seconds to wait for an idle CPU")
    add("--server-arg", action="append", default=[], metavar="ARG",
        help="extra promptserve argument, repeatable: --server-arg=--max-batch-size=8")  # fmt: skip
    add("--parts", default=",".join(PARTS), help="comma-separated subset to run")
    add("--ready-timeout", type=float, default=300, help="seconds to wait for /readyz")
    add("--work-dir", type=Path, help="keep task files, bodies, server logs here; default: temp")
    add("--json", type=Path, metavar="OUT", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    args.parts = args.parts.split(",")
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"unknown --parts {sorted(unknown)}; choose from {PARTS}")
    args.batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    return args


def bench_backbone(
    model: PreTrainedModel, args: argparse.Namespace, seq_len: int
) -> list[dict[str, Any]]:
    """(a): the best shape's rows/s, and the best single loop's (the issue's 'a tight loop').

    This process's CPU is the 'server' CPU here.
    """
    print(f"(a) raw backbone, seq_len {seq_len}, batch sizes {args.batch_sizes} ...")
    rows = []
    plans: list[tuple[str, list[int] | None]] = [("backbone", None)]
    if model.device.type == "cpu":  # on a GPU the best layout is one loop already
        plans.append(("backbone_one_loop", [1]))
    for key, layouts in plans:
        with CpuWindow() as cpu:
            result = measure_backbone(
                model, args.batch_sizes, seq_len, args.sweep_seconds, args.duration, layouts
            )
        shape = f"batch {result.best_batch_size} x {result.loops} loop(s)"
        label = f"(a) raw backbone, {shape}, seq {seq_len}"
        sweep = ", ".join(f"{s}: {rate:.1f}" for s, rate in result.sweep_rows_per_s.items())
        print(f"  {label}: {result.rows_per_s:.1f} rows/s; by batch x loops {{{sweep}}}")
        rows.append(
            {
                "key": key,
                "label": label,
                "throughput": result.rows_per_s,
                **asdict(result),
                **_cpu_figures(cpu),
            }
        )
    return rows


def raw_round(
    model: PreTrainedModel, best: dict[str, Any], args: argparse.Namespace
) -> Callable[[], dict[str, Any]]:
    """(a) once more at the layout its sweep chose, for --duration seconds: measured in every
    round beside (b) and (c), so that the ratios compare the same minutes of the VM (a single
    (a) before the rounds could catch a faster or slower minute than theirs)."""

    def measure() -> dict[str, Any]:
        with CpuWindow() as cpu:
            rate, ms_per_forward = rows_per_second(
                model, best["best_batch_size"], best["seq_len"], args.duration, best["loops"]
            )
        return {
            "throughput": rate,
            "ms_per_forward": ms_per_forward,
            **_cpu_figures(cpu),
        }

    return measure


def _cpu_figures(cpu: CpuWindow) -> dict[str, float]:
    """For (a): this process's cores (the 'server' column) and every other process's."""
    return {
        "server_cores": cpu.cores(cpu.process_s),
        "other_cores": cpu.cores(cpu.machine_s - cpu.process_s),
    }


def request_texts(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The texts and label names of the workload: --data's, or generated sentences."""
    if args.data:
        return read_jsonl(args.data)
    if args.text_tokens:  # every generated word is one token; [CLS], '.' and [SEP] make 3 more
        words = args.text_tokens - 3
        texts = generate_texts(args.num_texts, args.seed, min_words=words, max_words=words)
    else:
        texts = generate_texts(args.num_texts, args.seed)
    return texts, ["negative", "positive"]


def run(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    """Fill `results` as the figures come in: what was measured survives an interrupted run."""
    texts, labels = request_texts(args)
    model, tokenizer = load_backbone(resolve_source(args.backbone), args.precision, args.device)
    lengths = token_lengths(tokenizer, texts)
    names = task_names(args.tasks)
    hidden_size = model.config.hidden_size
    task_files = write_task_files(work / "tasks", names, args.prompt_len, hidden_size, labels)
    bodies = {
        "one": write_bodies(work / "bodies-1-task.jsonl", names[:1], texts, BODY_COUNT, args.seed),
        "many": write_bodies(work / "bodies-many.jsonl", names, texts, BODY_COUNT, args.seed),
    }
    results.update(
        machine=machine_facts(args.precision, args.loadgen, model.device),
        settings=dict(vars(args)),
        texts={"count": len(texts), "source": str(args.data or "generated"), "tokens": lengths},
    )
    http = bool({"promptserve", "textbook"} & set(args.parts))
    raw = None
    if "backbone" in args.parts:
        seq_len = args.prompt_len + round(lengths["mean"])
        results["rows"].extend(bench_backbone(model, args, seq_len))
        if http and args.rounds > 1:
            best = next(row for row in results["rows"] if row["key"] == "backbone")
            raw = raw_round(model, best, args)
    if raw is None:
        del model  # free its memory and threads before the servers start
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if http:
        servers = [part for part in args.parts if part != "backbone"]
        print(f"servers: {', '.join(servers)}; {args.rounds} round(s) ...")
        bench_http(args, work, task_files, bodies, results, raw)
    throughput = {row["key"]: row["throughput"] for row in results["rows"] if "error" not in row}
    results["ratios"] = ratios(throughput)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    # On SIGTERM (`timeout`, Ctrl-C's cousin) unwind normally, so the servers are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    args = parse_args()
    args.loadgen = choose_tool(args.loadgen)
    results: dict[str, Any] = {"rows": [], "complete": False}
    try:
        with tempfile.TemporaryDirectory(prefix="promptserve-bench-") as temp_dir:
            work = args.work_dir or Path(temp_dir)
            work.mkdir(parents=True, exist_ok=True)
            run(args, work, results)
        results["complete"] = True
        print_report(results)
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
            print(f"\nwrote {args.json}" + ("" if results["complete"] else " (incomplete run)"))
    return 1 if any("error" in row for row in results["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
