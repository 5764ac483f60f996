"""HF PEFT's default prompt-tuning recipe for sequence classification: the model PEFT builds, and
the training loop of PEFT's own example, on lists of token ids.

Source of the recipe: huggingface/peft, examples/sequence_classification/peft_no_lora_accelerate.py
run with --peft_type prompt_tuning: PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=20)
(PEFT's default init, RANDOM: nn.Embedding's N(0, 1)), AutoModelForSequenceClassification, AdamW
over model.parameters() at lr 1e-3 (torch's other defaults), linear decay to 0 with 0 warmup steps,
3 epochs, shuffled batches padded to their longest row. Batch size 32 is that of PEFT's
Prompt_Tuning.ipynb in the same folder (same lr; the script's default is 8 per device).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from run_env import autocast
from sentence_embed import pad
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup
from transformers.utils import logging as transformers_logging


@dataclass(frozen=True)
class Recipe:
    num_virtual_tokens: int = 20
    learning_rate: float = 1e-3
    epochs: int = 3
    batch_size: int = 32
    warmup_steps: int = 0


def require_peft() -> None:
    """A clear message instead of an ImportError deep inside a run."""
    try:
        import peft  # noqa: F401
    except ImportError as error:
        raise SystemExit(
            "this baseline needs HF PEFT: pip install 'peft>=0.10' (it brings accelerate and "
            "psutil). On a machine without network carry wheels: "
            "../shared/gpu/fetch-wheels.sh peft==0.21.2 accelerate==1.15.0 psutil==7.2.2"
        ) from error


def build_model(
    path: str, num_labels: int, recipe: Recipe, device: torch.device
) -> torch.nn.Module:
    """PeftModelForSequenceClassification: frozen backbone; prompt and classifier trainable."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    transformers_logging.set_verbosity_error()  # "classifier newly initialized" is expected
    base = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=num_labels, dtype=torch.float32
    )
    config = PromptTuningConfig(
        task_type=TaskType.SEQ_CLS,
        num_virtual_tokens=recipe.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.RANDOM,
    )
    return get_peft_model(base, config).to(device)


def trainable_parameter_names(model: torch.nn.Module) -> list[str]:
    return [name for name, param in model.named_parameters() if param.requires_grad]


def train(
    model: torch.nn.Module,
    token_ids: list[list[int]],
    label_ids: list[int],
    recipe: Recipe,
    epochs: int,
    autocast_dtype: torch.dtype | None,
    seed: int,
    pad_id: int,
) -> list[float]:
    """The example's loop; returns the mean training loss of each epoch."""
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    steps_per_epoch = -(-len(token_ids) // recipe.batch_size)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, recipe.warmup_steps, steps_per_epoch * epochs
    )
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(label_ids)
    epoch_losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(token_ids), generator=generator).tolist()
        losses = []
        for start in range(0, len(order), recipe.batch_size):
            rows = order[start : start + recipe.batch_size]
            input_ids, mask = pad([token_ids[i] for i in rows], pad_id, device)
            with autocast(device, autocast_dtype):
                loss = model(
                    input_ids=input_ids, attention_mask=mask, labels=labels[rows].to(device)
                ).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.detach())
        epoch_losses.append(torch.stack(losses).float().mean().item())
    return epoch_losses


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    token_ids: list[list[int]],
    batch_size: int,
    autocast_dtype: torch.dtype | None,
    pad_id: int,
) -> list[int]:
    """Predicted label ids, in input order; batches of similar length."""
    device = next(model.parameters()).device
    model.eval()
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    predicted = [0] * len(token_ids)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        input_ids, mask = pad([token_ids[i] for i in rows], pad_id, device)
        with autocast(device, autocast_dtype):
            logits = model(input_ids=input_ids, attention_mask=mask).logits  # [b, labels]
        for row, label in zip(rows, logits.argmax(dim=-1).tolist(), strict=True):
            predicted[row] = label
    return predicted
