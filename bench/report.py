"""The benchmark's report: machine facts, the table of figures, and the ratios against targets."""

import os
import platform
import shutil
import subprocess
from typing import Any

import torch
import transformers

# (name, numerator, denominator, target): each a key of the results' "throughput" map.
RATIOS = [
    ("promptserve 1 task / raw backbone", "promptserve_1_task", "backbone", 0.8),
    ("promptserve many tasks / 1 task", "promptserve_many_tasks", "promptserve_1_task", 0.9),
    ("promptserve 1 task / textbook", "promptserve_1_task", "textbook_1_task", 2.5),
]


def machine_facts(precision: str, loadgen: str) -> dict[str, Any]:
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    wrk_version = ""
    if loadgen == "wrk" and shutil.which("wrk"):
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "cpu_model": cpu_model,
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "precision": precision,
        "loadgen": loadgen,
        "wrk": wrk_version,
    }


def ratios(throughput: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for name, numerator, denominator, target in RATIOS:
        value = None
        if numerator in throughput and denominator in throughput:
            value = throughput[numerator] / throughput[denominator]
        rows.append({"name": name, "value": value, "target": target, "met": value is not None and value >= target})
    return rows


def _cell(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def print_report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(
        f"\nmachine: {machine['cpu_model']}, {machine['usable_cpus']}/{machine['nproc']} CPUs, "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), {machine['precision']}, "
        f"load average at start {machine['load_average_at_start'][0]:.2f}, load generator {machine['loadgen']}"
    )
    print(f"workload: {results['workload_summary']}\n")
    header = f"{'measurement':<44} {'rows|req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'server CPU':>10} {'loadgen CPU':>11} {'failed':>6}"
    print(header)
    print("-" * len(header))
    for row in results["rows"]:
        if "error" in row:
            print(f"{row['label']:<44} error: {row['error'].splitlines()[0]}")
            continue
        print(
            f"{row['label']:<44} {row['throughput']:>10.1f} {_cell(row.get('p50_ms'), '.1f'):>8} "
            f"{_cell(row.get('p99_ms'), '.1f'):>8} {_cell(row.get('server_cores'), '.2f'):>10} "
            f"{_cell(row.get('loadgen_cores'), '.3f'):>11} {_cell(row.get('failed'), 'd'):>6}"
        )
    print("\n(CPU columns are cores busy on average over the measurement.)\n")
    for ratio in results["ratios"]:
        verdict = "n/a" if ratio["value"] is None else ("met" if ratio["met"] else "MISSED")
        print(f"{ratio['name']:<36} {_cell(ratio['value'], '.2f'):>6}   target >= {ratio['target']:<4} {verdict}")
