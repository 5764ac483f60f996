"""Initial values for a soft prompt: vocabulary, label-name, text or random embeddings."""

from __future__ import annotations

from typing import Literal

import torch
from transformers import PreTrainedTokenizerBase

Init = Literal["vocab", "labels", "text", "random"]
INITS: tuple[Init, ...] = ("vocab", "labels", "text", "random")
# Sample "vocab" vectors from the common tokens: rare ones' embeddings are poorly trained.
COMMON_TOKENS = 5000


def initial_prompt(
    init: Init,
    prompt_len: int,
    embeddings: torch.Tensor,  # [vocab, hidden]
    tokenizer: PreTrainedTokenizerBase,
    generator: torch.Generator,
    labels: tuple[str, ...] = (),
    text: str | None = None,
) -> torch.Tensor:
    """A [prompt_len, hidden] fp32 tensor (Lester et al. 2021, section 3.2)."""
    embeddings = embeddings.detach().float().cpu()
    if init == "random":
        # The embedding table's own scale, so the prompt starts where real inputs live.
        std = float(embeddings.std())
        return torch.randn(prompt_len, embeddings.shape[1], generator=generator) * std
    vocab = _vocab_rows(prompt_len, embeddings, tokenizer, generator)
    if init == "vocab":
        return vocab
    if init == "labels":
        ids = [i for label in labels for i in _word_ids(tokenizer, label.replace("_", " "))]
    elif init == "text":
        if not text:
            raise ValueError("init 'text' needs an init text")
        ids = _word_ids(tokenizer, text)
    else:
        raise ValueError(f"unknown prompt init {init!r}; choose one of {', '.join(INITS)}")
    # Label or text tokens first (cut to fit), vocabulary vectors fill the rest.
    ids = ids[:prompt_len]
    prompt = vocab.clone()
    if ids:
        prompt[: len(ids)] = embeddings[torch.tensor(ids)]
    return prompt


def _vocab_rows(
    count: int,
    embeddings: torch.Tensor,
    tokenizer: PreTrainedTokenizerBase,
    generator: torch.Generator,
) -> torch.Tensor:
    special = set(tokenizer.all_special_ids)
    first = 1000 if embeddings.shape[0] > 2 * COMMON_TOKENS else 0  # BERT's [unused] block
    last = min(embeddings.shape[0], first + COMMON_TOKENS)
    pool = [i for i in range(first, last) if i not in special]
    picks = torch.randint(len(pool), (count,), generator=generator)
    return embeddings[torch.tensor(pool)[picks]].clone()


def _word_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
