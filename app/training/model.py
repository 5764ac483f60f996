"""The trainable classifier: a soft prompt and a linear head around the frozen backbone.

Its forward is the serving engine's: the same layout ([prompt; text; padding]), the same
encoder call and the same pooling function, for one task's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from app.backbone import Backbone
from app.engine import pool
from app.task import Pooling, TaskSpec


def pad_batch(
    ids: list[list[int]], rows: list[int], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The chosen rows' ids padded at the end [batch, longest], and their lengths [batch]."""
    lengths = torch.tensor([len(ids[i]) for i in rows])
    padded = torch.full((len(rows), int(lengths.max())), pad_id)
    for row, i in enumerate(rows):
        padded[row, : len(ids[i])] = torch.tensor(ids[i])
    return padded, lengths


class PromptClassifier(nn.Module):
    def __init__(
        self,
        backbone: Backbone,
        prompt: torch.Tensor,
        num_labels: int,
        pooling: Pooling,
        reparam: nn.Module | None = None,
    ):
        super().__init__()
        self.backbone = backbone  # frozen and shared; not a submodule, so never saved or copied
        self.prompt = nn.Parameter(prompt.float().clone())  # [m, hidden]
        self.reparam = reparam  # training only: maps the raw prompt to the one served
        self.head = nn.Linear(prompt.shape[1], num_labels)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.pooling: Pooling = pooling

    def forward(self, input_ids: torch.Tensor, text_lens: torch.Tensor) -> torch.Tensor:
        """Logits [batch, L] in fp32 for ids [batch, text] padded at the end, lengths [batch]."""
        return self.head(self.pooled(input_ids, text_lens))

    def pooled(self, input_ids: torch.Tensor, text_lens: torch.Tensor) -> torch.Tensor:
        """The pooled backbone output [batch, hidden] in fp32, before the head."""
        batch, text = input_ids.shape
        prompt_len, hidden_size = self.prompt.shape
        embed = self.backbone.model.get_input_embeddings()
        token_embeds = embed(input_ids)  # [batch, text, hidden]
        prompt = self.soft_prompt().to(token_embeds.dtype).expand(batch, prompt_len, hidden_size)
        inputs_embeds = torch.cat([prompt, token_embeds], dim=1)  # [batch, m + text, hidden]
        text_mask = torch.arange(text, device=input_ids.device)[None, :] < text_lens[:, None]
        prompt_mask = text_mask.new_ones(batch, prompt_len)
        attention_mask = torch.cat([prompt_mask, text_mask], dim=1).long()  # [batch, m + text]
        hidden, first = self.backbone.encode(inputs_embeds, attention_mask)
        prompt_lens = torch.full((batch, 1), prompt_len, device=input_ids.device)
        return pool(self.pooling, hidden, first, prompt_lens, text_lens[:, None])

    def soft_prompt(self) -> torch.Tensor:
        """The prompt the backbone sees and the task file keeps: [m, hidden] fp32."""
        return self.prompt if self.reparam is None else self.reparam(self.prompt)

    def prompt_parameters(self) -> list[nn.Parameter]:
        """What learns at the prompt's rate: the prompt and its reparameterisation, if any."""
        extra = [] if self.reparam is None else list(self.reparam.parameters())
        return [self.prompt, *extra]

    @property
    def pad_id(self) -> int:
        return int(self.backbone.tokenizer.pad_token_id or 0)

    def to_spec(self, labels: tuple[str, ...], description: str = "") -> TaskSpec:
        return TaskSpec(
            prompt=self.soft_prompt().detach().float().cpu().clone(),
            head_weight=self.head.weight.detach().float().cpu().clone(),
            head_bias=self.head.bias.detach().float().cpu().clone(),
            labels=labels,
            pooling=self.pooling,
            description=description,
        )


@contextmanager
def backbone_dropout(model: nn.Module, p: float) -> Iterator[None]:
    """The frozen backbone in training mode with dropout `p` everywhere (hidden and attention),
    for the steps only: the weights still get no gradient, and warm start, evaluation and the
    served task see the deterministic eval-mode model. p = 0 leaves the model as it is."""
    if p <= 0:
        yield
        return
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    saved = [m.p for m in layers]
    was_training = model.training
    for layer in layers:
        layer.p = p
    model.train()
    try:
        yield
    finally:
        for layer, old in zip(layers, saved, strict=True):
            layer.p = old
        model.train(was_training)
