"""How often the served precision's predictions agree with fp32, on random tasks (or shipped ones).

    python bench/precision_agreement.py --data ../shared/data/sst2/dev.jsonl --limit 200 --tasks 15

Random tasks: prompts and heads drawn like a freshly initialised task (prompt from the vocabulary's
embeddings, head at the scale of a trained one). With --prompts-dir, the registry's tasks are used.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from app.backbone import load_backbone
from app.engine import Engine, Row
from app.registry import Registry
from app.task import POOLINGS, TaskSpec

SENTENCES = [
    "a gripping, beautifully shot film with a script that never lets up",
    "the plot is thin and the jokes fall flat",
    "stocks rallied on tuesday after the central bank held rates",
    "what year did the berlin wall fall ?",
    "urgent ! you have won a 1 week free holiday . call now",
    "i lost my card yesterday , how do i block it ?",
]


def load_texts(path: str | None, limit: int) -> list[str]:
    if path is None:
        return SENTENCES
    lines = Path(path).read_text().splitlines()[:limit]
    return [json.loads(line)["text"] for line in lines]


def random_tasks(engine: Engine, count: int, seed: int) -> list[TaskSpec]:
    g = torch.Generator().manual_seed(seed)
    vocab = engine.backbone.model.get_input_embeddings().weight.detach().float().cpu()
    hidden = engine.backbone.hidden_size
    specs = []
    for i in range(count):
        labels = tuple(f"l{j}" for j in range(2 + i % 5))
        prompt = vocab[torch.randint(0, vocab.shape[0], (20,), generator=g)]
        weight = torch.randn(len(labels), hidden, generator=g) / hidden**0.5 * 8
        pooling = POOLINGS[i % len(POOLINGS)]
        specs.append(TaskSpec(prompt, weight, torch.zeros(len(labels)), labels, pooling))
    return specs


def predictions(engine: Engine, specs: list[TaskSpec], texts: list[str], batch: int) -> list[int]:
    tasks = [engine.to_device(spec, f"t{i}", 1) for i, spec in enumerate(specs)]
    ids = [
        engine.backbone.tokenizer(t, truncation=True, max_length=256)["input_ids"] for t in texts
    ]
    rows = [Row(i, task) for task in tasks for i in ids]
    out: list[int] = []
    for start in range(0, len(rows), batch):
        out += [int(x.argmax()) for x in engine.forward(rows[start : start + batch])]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument(
        "--data", help="JSONL with a 'text' field (default: a few built-in sentences)"
    )
    parser.add_argument("--limit", type=int, default=300, help="texts read from --data")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument(
        "--prompts-dir", help="use this registry's active tasks instead of random ones"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    texts = load_texts(args.data, args.limit)
    reference = Engine(load_backbone(args.backbone, "cpu", "fp32"))
    if args.prompts_dir:
        registry = Registry(Path(args.prompts_dir), reference.backbone.identity)
        registry.load()
        specs = [registry.read_spec(t, registry.state(t).active) for t in registry.task_ids()]
    else:
        specs = random_tasks(reference, args.tasks, args.seed)
    started = time.perf_counter()
    want = predictions(reference, specs, texts, 32)
    low = Engine(load_backbone(args.backbone, "auto", args.precision))
    got = predictions(low, specs, texts, 32)
    agree = sum(a == b for a, b in zip(want, got, strict=True))
    print(
        f"backbone {args.backbone}, {len(specs)} tasks x {len(texts)} texts "
        f"= {len(want)} predictions"
    )
    print(
        f"{args.precision} vs fp32 agreement: {agree}/{len(want)} = {100 * agree / len(want):.2f} %"
        f"  ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    random.seed(0)
    main()
