"""Baseline 2 of issue 3: HF PEFT's default prompt-tuning recipe on the same frozen backbone.

    python bench/baselines/peft_default.py --out bench/baselines/results/peft_default.json

The recipe and where it comes from are in peft_recipe.py. PEFT's model pools position 0 (the first
virtual token) through the backbone's pooler into a new classifier; prompt and classifier train, the
backbone stays frozen. Scored once, after the last epoch, on the eval split (no selection on it).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
from peft_recipe import (
    Recipe,
    build_model,
    predict,
    require_peft,
    train,
    trainable_parameter_names,
)
from run_env import (
    add_common_args,
    apply_threads,
    autocast_dtype,
    backbone_path,
    choose_device,
    device_name,
    stopwatch,
    write_results,
)
from scoring import accuracy, macro_f1
from task_data import load_task, parse_tasks
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

log = logging.getLogger("peft_default")


def parse_task_epochs(spec: str) -> dict[str, int]:
    """'sentiment=1,topic=2' -> {'sentiment': 1, 'topic': 2}."""
    epochs = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise SystemExit(f"--task-epochs: expected TASK=N with N >= 1, got {item!r}")
        epochs[name] = int(count)
    return epochs


def tokenize(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_tokens: int
) -> list[list[int]]:
    return tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]


def run_task(
    name: str, args: argparse.Namespace, recipe: Recipe, tokenizer: PreTrainedTokenizerBase
) -> dict[str, Any]:
    data = load_task(name, args.data_dir, args.limit, args.seed)
    device = choose_device(args.device)
    dtype = autocast_dtype(args.precision, device)
    torch.manual_seed(args.seed)  # the prompt's and the classifier's random init
    model = build_model(args.backbone_path, len(data.labels), recipe, device)
    trainable = trainable_parameter_names(model)
    # the prompt and the text's tokens must fit the backbone's positions (512)
    positions = AutoConfig.from_pretrained(args.backbone_path).max_position_embeddings
    max_tokens = int(positions) - recipe.num_virtual_tokens
    pad_id = tokenizer.pad_token_id or 0
    train_ids = tokenize(tokenizer, data.train.texts, max_tokens)
    eval_ids = tokenize(tokenizer, data.eval.texts, max_tokens)
    epochs = args.task_epochs.get(name, recipe.epochs)
    seconds: dict[str, float] = {}
    with stopwatch(device, seconds, "train_s"):
        losses = train(
            model, train_ids, data.train.label_ids, recipe, epochs, dtype, args.seed, pad_id
        )
    with stopwatch(device, seconds, "eval_s"):
        predicted = predict(model, eval_ids, args.eval_batch_size, dtype, pad_id)
    return {
        "accuracy": accuracy(predicted, data.eval.label_ids),
        "macro_f1": macro_f1(predicted, data.eval.label_ids),
        "train_file": str(data.train.path),
        "eval_file": str(data.eval.path),
        "train_rows": len(data.train.texts),
        "eval_rows": len(data.eval.texts),
        "labels": len(data.labels),
        "epochs": epochs,
        "train_loss_by_epoch": losses,
        "trainable_parameters": trainable,
        "train_examples_per_s": len(data.train.texts) * epochs / seconds["train_s"],
        "eval_examples_per_s": len(data.eval.texts) / seconds["eval_s"],
        **seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument(
        "--task-epochs", type=parse_task_epochs, default={}, help="e.g. sentiment=1"
    )
    parser.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    parser.add_argument("--eval-batch-size", type=int, default=0, help="0: by device")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    require_peft()
    apply_threads(args.threads)
    device = choose_device(args.device)
    args.backbone_path = backbone_path(args.backbone)
    args.eval_batch_size = args.eval_batch_size or (512 if device.type == "cuda" else 64)
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size)
    tokenizer = AutoTokenizer.from_pretrained(args.backbone_path)
    import peft

    results: dict[str, Any] = {
        "baseline": "HF PEFT default prompt tuning (SEQ_CLS, random init, first-token pooling)",
        "recipe": dataclasses.asdict(recipe),
        "recipe_source": "huggingface/peft examples/sequence_classification/"
        "peft_no_lora_accelerate.py (prompt_tuning defaults) and Prompt_Tuning.ipynb (batch 32)",
        "peft_version": peft.__version__,
        "backbone": args.backbone_path,
        "device": device.type,
        "device_name": device_name(device),
        "autocast": str(autocast_dtype(args.precision, device) or "none (fp32)"),
        "limit": args.limit,
        "seed": args.seed,
        "tasks": {},
    }
    for name in parse_tasks(args.tasks):
        results["tasks"][name] = task = run_task(name, args, recipe, tokenizer)
        write_results(Path(args.out), results)
        log.info(
            "%s: accuracy %.4f, macro-F1 %.4f, %d epochs, train %.1f s (%.0f ex/s)",
            name,
            task["accuracy"],
            task["macro_f1"],
            task["epochs"],
            task["train_s"],
            task["train_examples_per_s"],
        )
    log.info("results in %s", args.out)


if __name__ == "__main__":
    main()
