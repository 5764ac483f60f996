"""Baseline 1 of issue 3: a logistic-regression probe on the frozen backbone's sentence embeddings.

    python bench/baselines/probe.py --out bench/baselines/results/probe.json [--tasks spam,intent]
        [--predictions DIR]

Each text is embedded once (mean of the real tokens' outputs, L2-normalised, as
sentence-transformers does for all-MiniLM-L6-v2); a multinomial logistic regression (L2, full-batch
L-BFGS, standardised features) is fitted on the train split, its L2 strength chosen on a seeded
10 % validation split carved from train (whole texts: a repeated text's rows stay on one side),
then refitted on all of train and scored once on the eval split.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch
from run_env import (
    add_common_args,
    apply_threads,
    autocast_dtype,
    backbone_path,
    choose_device,
    cpu_threads,
    device_name,
    stopwatch,
    write_results,
)
from scoring import accuracy, macro_f1
from sentence_embed import embed, load_encoder, max_seq_length, normalizes
from task_data import load_task, parse_tasks
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from app.training.groups import text_groups
from app.training.logreg import fit, select_l2

log = logging.getLogger("probe")


class Embedder:
    """The loaded backbone with the settings every embedding call of a run shares."""

    def __init__(self, path: str, device: torch.device, precision: str, batch_size: int) -> None:
        self.tokenizer: PreTrainedTokenizerBase
        self.model: PreTrainedModel
        self.tokenizer, self.model = load_encoder(path, device)
        self.max_length = max_seq_length(path, self.model)
        self.normalize = normalizes(path)
        self.dtype = autocast_dtype(precision, device)
        self.batch_size = batch_size or (1024 if device.type == "cuda" else 64)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return embed(
            texts,
            self.tokenizer,
            self.model,
            self.max_length,
            self.batch_size,
            self.dtype,
            self.normalize,
        )


def run_task(name: str, args: argparse.Namespace, embedder: Embedder) -> dict[str, Any]:
    data = load_task(name, args.data_dir, args.limit, args.seed)
    device = embedder.model.device
    train_y = torch.tensor(data.train.label_ids, device=device)
    seconds: dict[str, float] = {}
    with stopwatch(device, seconds, "embed_train_s"):
        train_x = embedder(data.train.texts)  # [train rows, hidden]
    with stopwatch(device, seconds, "select_l2_s"), cpu_threads(device, 1):
        groups = text_groups(data.train.texts)
        l2, validation = select_l2(train_x, train_y, len(data.labels), args.seed, groups)
    with stopwatch(device, seconds, "fit_s"), cpu_threads(device, 1):
        model = fit(train_x, train_y, len(data.labels), l2)
    with stopwatch(device, seconds, "eval_s"):
        predicted = model.predict(embedder(data.eval.texts))
    if args.predictions:
        path = args.predictions / f"{name}.jsonl"
        write_predictions(path, data.eval.texts, data.eval.label_ids, predicted, data.labels)
    train_s = seconds["embed_train_s"] + seconds["select_l2_s"] + seconds["fit_s"]
    return {
        "accuracy": accuracy(predicted, data.eval.label_ids),
        "macro_f1": macro_f1(predicted, data.eval.label_ids),
        "train_file": str(data.train.path),
        "eval_file": str(data.eval.path),
        "train_rows": len(data.train.texts),
        "eval_rows": len(data.eval.texts),
        "labels": len(data.labels),
        "l2": l2,
        "validation_accuracy_by_l2": validation,
        "train_s": train_s,
        "train_examples_per_s": len(data.train.texts) / train_s,
        "embed_examples_per_s": len(data.train.texts) / seconds["embed_train_s"],
        "eval_examples_per_s": len(data.eval.texts) / seconds["eval_s"],
        **seconds,
    }


def write_predictions(
    path: Path, texts: list[str], true: list[int], predicted: list[int], names: list[str]
) -> None:
    """One JSON line per row, in order: its text, true label and the probe's label, ids named by
    `names` (bench/baselines/paired.py compares them with a task's, row by row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = zip(texts, true, predicted, strict=True)
    lines = (
        json.dumps({"text": t, "label": names[y], "predicted": names[p]}) + "\n" for t, y, p in rows
    )
    path.write_text("".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--batch-size", type=int, default=0, help="embedding batch; 0: by device")
    parser.add_argument(
        "--predictions", type=Path, help="write DIR/<task>.jsonl: eval rows' labels"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.manual_seed(args.seed)
    apply_threads(args.threads)
    device = choose_device(args.device)
    path = backbone_path(args.backbone)
    embedder = Embedder(path, device, args.precision, args.batch_size)
    results: dict[str, Any] = {
        "baseline": "logistic-regression probe on mean-pooled embeddings",
        "backbone": path,
        "device": device.type,
        "device_name": device_name(device),
        "autocast": str(embedder.dtype) if embedder.dtype else "none (fp32)",
        "max_length": embedder.max_length,
        "l2_normalized_embeddings": embedder.normalize,
        "limit": args.limit,
        "seed": args.seed,
        "tasks": {},
    }
    for name in parse_tasks(args.tasks):
        results["tasks"][name] = run_task(name, args, embedder)
        write_results(Path(args.out), results)
        task = results["tasks"][name]
        log.info(
            "%s: accuracy %.4f, macro-F1 %.4f, L2 %.0e, train %.1f s (%.0f ex/s)",
            name,
            task["accuracy"],
            task["macro_f1"],
            task["l2"],
            task["train_s"],
            task["train_examples_per_s"],
        )
    log.info("results in %s", args.out)


if __name__ == "__main__":
    main()
