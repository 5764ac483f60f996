"""Reference for issue 3 (not a baseline to beat): the default backbone fully fine-tuned.

    python bench/baselines/full_finetune.py --tasks question-type --out /tmp/full-ft.json

Every weight of all-MiniLM-L6-v2 trains, with a linear head on the mean of the real tokens'
outputs: what the frozen backbone gives up by training only a prompt and a head. The recipe is
fixed, not tuned: AdamW lr 1e-4 (weight decay 0.01), 6 % linear warm-up then linear decay, batches
of 32 shuffled each epoch, 3 epochs, bf16 autocast on CPUs and GPUs with native bf16, on every
training row, the model as `from_pretrained` returns it (eval mode: no dropout); the eval split is
scored once, after the last epoch.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from run_env import DEFAULT_DATA_DIR, backbone_path, choose_device, device_name, write_results
from scoring import accuracy, macro_f1
from task_data import TASK_FILES, load_task, parse_tasks
from torch import nn
from transformers import AutoModel, AutoTokenizer

from app.backbone import cpu_has_native_bf16

BATCH = 32


Logits = Callable[[list[str]], torch.Tensor]  # texts -> [n, labels] fp32 logits, on the CPU


def fine_tune(
    texts: list[str], label_ids: list[int], n_labels: int, args: argparse.Namespace, name: str
) -> tuple[Logits, float]:
    """Fine-tune the whole backbone and a head with the fixed recipe; (logits fn, train seconds)."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    train = list(zip(texts, label_ids, strict=True))
    tokenizer = AutoTokenizer.from_pretrained(args.backbone)
    model = AutoModel.from_pretrained(args.backbone).to(args.device)
    head = nn.Linear(model.config.hidden_size, n_labels).to(args.device)
    bf16 = bf16_autocast(args.device)

    def pooled(batch: list[str]) -> torch.Tensor:
        encoded = tokenizer(
            batch, padding=True, truncation=True, max_length=128, return_tensors="pt"
        ).to(args.device)
        with torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=bf16):
            hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).float()
        return (hidden.float() * mask).sum(1) / mask.sum(1)

    optimizer = torch.optim.AdamW(
        [*model.parameters(), *head.parameters()], lr=args.lr, weight_decay=0.01
    )
    steps = args.epochs * ((len(train) + BATCH - 1) // BATCH)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / (0.06 * steps), max(0.0, (steps - s) / (0.94 * steps)))
    )
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        random.shuffle(train)
        total = 0.0
        for i in range(0, len(train), BATCH):
            batch, batch_ids = zip(*train[i : i + BATCH], strict=True)
            targets = torch.tensor(batch_ids, device=args.device)
            loss = nn.functional.cross_entropy(head(pooled(list(batch))), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(batch)
        print(f"{name} epoch {epoch}: loss {total / len(train):.4f}", flush=True)
    seconds = time.perf_counter() - started
    model.eval()

    def logits(batch_texts: list[str]) -> torch.Tensor:
        out = []
        with torch.inference_mode():
            for i in range(0, len(batch_texts), 128):
                out.append(head(pooled(batch_texts[i : i + 128])).float().cpu())
        return torch.cat(out)

    return logits, seconds


def bf16_autocast(device: torch.device) -> bool:
    return device.type == "cuda" or cpu_has_native_bf16()


def run_task(task: str, args: argparse.Namespace) -> dict[str, Any]:
    data = load_task(task, args.data_dir)
    logits, seconds = fine_tune(
        data.train.texts, data.train.label_ids, len(data.labels), args, task
    )
    predicted = logits(data.eval.texts).argmax(1).tolist()
    true = data.eval.label_ids
    return {
        "task": task,
        "eval_split": TASK_FILES[task][2].removesuffix(".jsonl"),
        "examples": len(true),
        "accuracy": round(accuracy(predicted, true), 4),
        "macro_f1": round(macro_f1(predicted, true), 4),
        "train_seconds": round(seconds, 1),
        "examples_per_s": round(args.epochs * len(data.train.texts) / seconds),
        "epochs": args.epochs,
        "lr": args.lr,
        "seed": args.seed,
        "bf16": bf16_autocast(args.device),
        "device": device_name(args.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--tasks", default="question-type,spam,intent,topic")
    parser.add_argument("--backbone", default="default", help="model dir (default: MiniLM)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON of every task's figures, rewritten per task")
    args = parser.parse_args()
    args.backbone = backbone_path(args.backbone)
    args.device = choose_device(args.device)
    results = []
    for task in parse_tasks(args.tasks):
        results.append(run_task(task, args))
        print(results[-1], flush=True)
        if args.out:
            write_results(args.out, {"results": results})


if __name__ == "__main__":
    main()
