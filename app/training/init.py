"""Initial values for a soft prompt: vocabulary, label-name, text or random embeddings, or a
prompt trained before (another task's: prompt transfer, Vu et al. 2022; or this task's own)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from transformers import PreTrainedTokenizerBase

from app import prompt_file
from app.errors import PromptserveError
from app.prompt_file import BackboneIdentity

Init = Literal["vocab", "labels", "text", "random", "prompt"]
INITS: tuple[Init, ...] = ("vocab", "labels", "text", "random", "prompt")
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
    source: torch.Tensor | None = None,
) -> torch.Tensor:
    """A [prompt_len, hidden] fp32 tensor (Lester et al. 2021, section 3.2).

    `source` is the prompt that init "prompt" starts from (see `prompt_from_file`).
    """
    if init == "prompt":
        return _from_source(source, prompt_len)
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
        if not ids:
            raise ValueError(f"--init-text {text!r} has no tokens to start the prompt from")
    else:
        raise ValueError(f"unknown prompt init {init!r}; choose one of {', '.join(INITS)}")
    # Label or text tokens first (cut to fit), vocabulary vectors fill the rest.
    ids = ids[:prompt_len]
    prompt = vocab.clone()
    if ids:
        prompt[: len(ids)] = embeddings[torch.tensor(ids)]
    return prompt


def prompt_from_file(path: str | Path, backbone: BackboneIdentity) -> torch.Tensor:
    """The prompt of a prompt file made for `backbone`; ValueError naming the file otherwise."""
    try:
        spec, _ = prompt_file.decode(Path(path).read_bytes(), backbone)
    except (OSError, PromptserveError) as exc:
        raise ValueError(f"--init-prompt {path}: {exc}") from exc
    return spec.prompt


def _from_source(source: torch.Tensor | None, prompt_len: int) -> torch.Tensor:
    if source is None:
        raise ValueError("init 'prompt' needs a prompt file (--init-prompt FILE)")
    if source.shape[0] != prompt_len:
        raise ValueError(
            f"the init prompt has {source.shape[0]} vectors but the prompt length is "
            f"{prompt_len}: pass --prompt-len {source.shape[0]}"
        )
    return source.detach().float().cpu().clone()


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
