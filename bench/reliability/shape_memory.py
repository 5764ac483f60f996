"""Resident memory against the number of distinct batch shapes the engine has seen.

    python bench/reliability/shape_memory.py [--trace off] [--passes 2]

Runs the engine alone (no HTTP) over every (rows, tokens) shape of a grid, in random order,
`passes` times, printing the process's resident memory after each pass. Growth in the first pass
only means memory kept per distinct shape (kernel and primitive caches, allocator high-water
marks), bounded by the shapes there are; growth in every pass would be a leak per request.
`--kernel-cache N` caps oneDNN's and ideep's per-shape caches at N entries, as `promptserve serve`
does (setting `cpu_kernel_cache`).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server import rss_mib  # noqa: E402

from app.backbone import limit_cpu_kernel_caches, load_backbone  # noqa: E402
from app.engine import Engine, Row  # noqa: E402
from app.settings import DEFAULT_BACKBONE  # noqa: E402
from app.task import TaskSpec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--trace", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument(
        "--kernel-cache", type=int, default=0, help="cap the CPU kernel caches, as serve does"
    )
    args = parser.parse_args()
    if args.kernel_cache:
        limit_cpu_kernel_caches(args.kernel_cache)
    backbone = load_backbone(args.backbone, "cpu", "auto", "auto", args.trace)
    torch.set_num_threads(1)  # as one model worker of two on a 2-core machine
    engine = Engine(backbone)
    hidden = backbone.hidden_size
    spec = TaskSpec(torch.zeros(16, hidden), torch.zeros(2, hidden), torch.zeros(2), ("a", "b"))
    task = engine.to_device(spec, "t", 1)
    shapes = [(rows, tokens) for rows in range(1, 33, 3) for tokens in range(5, 100, 7)]
    random.Random(0).shuffle(shapes)
    print(f"{backbone.precision}, after loading: {rss_mib(0):.0f} MiB RSS", flush=True)
    for number in range(1, args.passes + 1):
        started = time.monotonic()
        for rows, tokens in shapes:
            engine.forward([Row(list(range(1000, 1000 + tokens)), task) for _ in range(rows)])
        elapsed = time.monotonic() - started
        memory = rss_mib(0)
        print(f"pass {number}: {len(shapes)} shapes, {memory:.0f} MiB RSS ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
