"""The benchmark's report: machine facts, the table of figures, and the ratios against targets."""

import os
import platform
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import torch
import transformers
from cputime import NOISY_OTHER_CORES

# (name, numerator, denominator, target): keys of the rows' throughputs
RATIOS = [
    ("promptserve 1 task / raw backbone", "promptserve_1_task", "backbone", 0.8),
    ("promptserve 1 task / raw, one loop", "promptserve_1_task", "backbone_one_loop", 0.8),
    ("promptserve many tasks / 1 task", "promptserve_many_tasks", "promptserve_1_task", 0.9),
    ("promptserve 1 task / textbook", "promptserve_1_task", "textbook_1_task", 2.5),
]
COLUMNS = [  # (row key, header, width, format)
    ("throughput", "rows|req/s", 10, ".1f"),
    ("p50_ms", "p50 ms", 8, ".1f"),
    ("p99_ms", "p99 ms", 8, ".1f"),
    ("failed", "failed", 6, "d"),
    ("server_cores", "server CPU", 10, ".2f"),
    ("loadgen_cores", "loadgen CPU", 11, ".3f"),
    ("other_cores", "other CPU", 9, ".2f"),
    ("forward_busy", "fwd busy", 8, ".2f"),  # forward seconds per second, summed over workers
    ("mean_batch_rows", "rows/batch", 10, ".1f"),
]
LABEL_WIDTH = 44


def machine_facts(precision: str, loadgen: str, device: torch.device) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    wrk = ""
    if loadgen == "wrk" and shutil.which("wrk"):
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "precision": precision,
        "loadgen": loadgen,
        "wrk": wrk,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
    }


def ratios(throughput: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for name, numerator, denominator, target in RATIOS:
        value = None
        if numerator in throughput and denominator in throughput:
            value = throughput[numerator] / throughput[denominator]
        met = value is not None and value >= target
        rows.append({"name": name, "value": value, "target": target, "met": met})
    return rows


def _cell(value: float | None, width: int, pattern: str) -> str:
    return f"{'-' if value is None else format(value, pattern):>{width}}"


def print_report(results: dict[str, Any]) -> None:
    machine, settings, tokens = results["machine"], results["settings"], results["texts"]["tokens"]
    print(f"\nmachine: {machine['cpu_model']}, {machine['usable_cpus']}/{machine['nproc']} CPUs, "
          f"torch {machine['torch']} ({machine['torch_threads']} threads), {machine['precision']}, "
          f"load average {machine['load_average_at_start']:.2f} at start")  # fmt: skip
    if machine.get("gpu"):
        print(f"GPU: {machine['gpu']} (CUDA {machine['cuda']}), device {machine['device']}")
    print(f"texts: {results['texts']['count']} ({results['texts']['source']}), tokens mean "
          f"{tokens['mean']:.1f}, median {tokens['median']}, p90 {tokens['p90']}, "
          f"max {tokens['max']}")  # fmt: skip
    procs = settings.get("loadgen_procs", 1)
    print(f"load: {machine['loadgen']}{f' x {procs} processes' if procs > 1 else ''}, "
          f"{settings['concurrency']} connections, "
          f"{settings['duration']:g} s per measurement after {settings['warmup']:g} s warm-up; "
          f"prompt_len {settings['prompt_len']}")  # fmt: skip
    if info := results.get("server_info"):
        print(f"promptserve: {info.get('device')}, {info.get('precision')}, {info.get('workers')}; "
              f"extra arguments {settings['server_arg']}")  # fmt: skip
    print()
    header = f"{'measurement':<{LABEL_WIDTH}}" + "".join(
        f" {title:>{width}}" for _, title, width, _ in COLUMNS
    )
    print(header + "\n" + "-" * len(header))
    for row in results["rows"]:
        if "error" in row:
            print(f"{row['label']:<{LABEL_WIDTH}} error: {row['error'].splitlines()[0]}")
            continue
        cells = "".join(f" {_cell(row.get(key), width, fmt)}" for key, _, width, fmt in COLUMNS)
        print(f"{row['label']:<{LABEL_WIDTH}}{cells}")
    for row in results["rows"]:
        if len(row.get("rounds", [])) > 1:
            rounds = ", ".join(f"{rate:.1f}" for rate in row["rounds"])
            unit = "rows/s" if row["key"].startswith("backbone") else "req/s"
            first = row.get("first_rows_per_s")
            after = f" (after its sweep: {first:.1f})" if first is not None else ""
            print(f"  {row['label']}: rounds {rounds} {unit}{after}, "
                  f"{row['clean_rounds']} undisturbed")  # fmt: skip
    print(
        f"\n(a) with rounds, (b), (c): the median round among undisturbed ones (other CPU <= "
        f"{NOISY_OTHER_CORES}); (a) is measured at the start of each round, the servers idle."
    )
    print("CPU: cores busy on average while measuring; for (a) 'server' is the bench process.")
    print("'other CPU' is every other process on the machine, steal included.")
    noisy = [
        row["label"] for row in results["rows"] if row.get("other_cores", 0) > NOISY_OTHER_CORES
    ]
    if noisy:
        print(f"WARNING: other processes used > {NOISY_OTHER_CORES} cores in: {', '.join(noisy)}.")
    print()
    for ratio in results["ratios"]:
        verdict = "n/a" if ratio["value"] is None else ("met" if ratio["met"] else "MISSED")
        value = _cell(ratio["value"], 6, ".2f")
        print(f"{ratio['name']:<36}{value}   target >= {ratio['target']:<4} {verdict}")
    paired = paired_ratios(results.get("samples", {}))
    if paired:
        rounds = ", ".join(f"{value:.2f}" for value in paired)
        print(f"  (b, 1 task)/(a) round by round, each (a) measured just before its (b): {rounds} "
              f"(median {statistics.median(paired):.2f})")  # fmt: skip


def paired_ratios(samples: dict[str, list[dict[str, Any]]]) -> list[float]:
    """(b, 1 task) over the (a) measured at the start of the same round, round by round."""
    raw, served = samples.get("backbone", []), samples.get("promptserve_1_task", [])
    return [b["throughput"] / a["throughput"] for a, b in zip(raw, served, strict=False)]
