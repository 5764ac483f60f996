"""Sentence embeddings from the frozen backbone: the mean of the real tokens' outputs, as
sentence-transformers computes them for all-MiniLM-L6-v2 (then L2-normalised, when the model's
sentence-transformers pipeline normalises)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from run_env import autocast
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase


def load_encoder(
    path: str, device: torch.device
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=torch.float32)
    model.eval().requires_grad_(False)
    return tokenizer, model.to(device)


def max_seq_length(path: str, model: PreTrainedModel) -> int:
    """sentence-transformers' own cut (256 for all-MiniLM-L6-v2), else the model's positions."""
    config = Path(path) / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text())["max_seq_length"])
    return int(model.config.max_position_embeddings)


def normalizes(path: str) -> bool:
    """True when the model's sentence-transformers pipeline ends in a Normalize module."""
    modules = Path(path) / "modules.json"
    if not modules.is_file():
        return False
    return any(m["type"].endswith(".Normalize") for m in json.loads(modules.read_text()))


@torch.inference_mode()
def embed(
    texts: list[str],
    tokenizer: PreTrainedTokenizerBase,
    model: PreTrainedModel,
    max_length: int,
    batch_size: int,
    autocast_dtype: torch.dtype | None,
    normalize: bool,
) -> torch.Tensor:
    """[len(texts), hidden] float32 on the model's device; inputs batched by similar length."""
    device = model.device
    token_ids: list[list[int]] = tokenizer(texts, truncation=True, max_length=max_length)[
        "input_ids"
    ]
    order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
    out = torch.empty(len(texts), model.config.hidden_size, device=device)  # [n, hidden]
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        input_ids, mask = pad([token_ids[i] for i in rows], tokenizer.pad_token_id or 0, device)
        with autocast(device, autocast_dtype):
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        out[torch.tensor(rows, device=device)] = mean_pool(hidden.float(), mask)
    return torch.nn.functional.normalize(out, dim=-1) if normalize else out


def pad(
    sequences: list[list[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids [b, longest], attention mask [b, longest]) on the device."""
    longest = max(len(seq) for seq in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sequences), longest, dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return input_ids.to(device), mask.to(device)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real tokens (special tokens included, padding excluded): [b, hidden]."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # [b, seq, 1]
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
