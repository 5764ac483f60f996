"""How far an input's fp32 logits move between a mixed batch and alone, and why.

    python bench/gpu/fp32_invariance.py --backbone DIR [--backbone DIR2 ...] [--device cuda]

tests/test_gpu.py's batch-invariance check (64 rows of 12 random tasks, fp32) against the issue's
bar (1e-4, absolute), repeated for each backbone x attention kernel (sdpa, eager) x head scale:
the tests' N(0, 1) heads, whose logits on a 768-wide random BERT reach tens, and heads scaled
by 1/sqrt(hidden), whose logits are of a trained head's size. Rounding in fp32 grows with the
logits; a batching bug (a row seeing another row's tokens or prompt) moves them by their own size.
Prints one line per case: max |batched - alone|, max |logit| and their ratio.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from app.backbone import load_backbone  # noqa: E402
from app.engine import Engine, Row  # noqa: E402
from tests.test_engine import TEXTS, make_tasks, tokenize  # noqa: E402


def measure(engine: Engine, scale: float) -> tuple[float, float]:
    _, tasks = make_tasks(engine, 12, head_scale=scale)
    rng = random.Random(1)
    rows = [Row(tokenize(engine, rng.choice(TEXTS)), rng.choice(tasks)) for _ in range(64)]
    batched = engine.forward(rows)
    alone = [engine.forward([row])[0] for row in rows]
    diff = max((a - b).abs().max().item() for a, b in zip(batched, alone, strict=True))
    return diff, max(a.abs().max().item() for a in alone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", action="append", required=True)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    for source in args.backbone:
        for attention in ("sdpa", "eager"):
            backbone = load_backbone(
                source, device=args.device, precision="fp32", attention=attention
            )
            engine = Engine(backbone)
            for name, scale in (("N(0,1)", 1.0), ("1/sqrt(d)", backbone.hidden_size**-0.5)):
                diff, top = measure(engine, scale)
                print(
                    f"{Path(source).name} {attention:5} head {name:9}: max |batched - alone| "
                    f"{diff:.2e}, max |logit| {top:6.2f}, ratio {diff / top:.1e}",
                    flush=True,
                )


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
