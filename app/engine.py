"""The engine: one batched forward of the frozen backbone for rows of any mix of tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from app.backbone import Backbone
from app.task import Pooling, TaskSpec


@dataclass(frozen=True, eq=False)
class DeviceTask:
    """A task's tensors on the backbone's device: prompt in the model's dtype, head in fp32."""

    task: str
    version: int
    prompt: torch.Tensor  # [m, d], model dtype
    head_weight: torch.Tensor  # [L, d], fp32
    head_bias: torch.Tensor  # [L], fp32
    labels: tuple[str, ...]
    pooling: Pooling
    pooler_weight: torch.Tensor | None = None  # [d, d], fp32: the task's own pooler, if any
    pooler_bias: torch.Tensor | None = None  # [d], fp32

    @property
    def prompt_len(self) -> int:
        return int(self.prompt.shape[0])

    @property
    def reads(self) -> str:
        """The pooling rule over the backbone's output; a task pooler reads raw position 0."""
        return "position0" if self.pooler_weight is not None else self.pooling

    @property
    def nbytes(self) -> int:
        tensors = (
            self.prompt,
            self.head_weight,
            self.head_bias,
            self.pooler_weight,
            self.pooler_bias,
        )
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


@dataclass(frozen=True)
class Row:
    """One input text, already tokenized (special tokens included), for one task version."""

    input_ids: Sequence[int]
    task: DeviceTask

    @property
    def length(self) -> int:
        """Positions this row takes in a forward: prompt plus tokens."""
        return self.task.prompt_len + len(self.input_ids)


class Engine:
    """Runs mixed-task batches through one shared backbone; knows nothing of queues or HTTP."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.pad_id = int(backbone.tokenizer.pad_token_id or 0)

    def to_device(self, spec: TaskSpec, task: str, version: int) -> DeviceTask:
        device, dtype = self.backbone.device, self.backbone.dtype

        def fp32(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device=device, dtype=torch.float32)

        return DeviceTask(
            task=task,
            version=version,
            prompt=spec.prompt.to(device=device, dtype=dtype),
            head_weight=spec.head_weight.to(device=device, dtype=torch.float32),
            head_bias=spec.head_bias.to(device=device, dtype=torch.float32),
            labels=spec.labels,
            pooling=spec.pooling,
            pooler_weight=fp32(spec.pooler_weight),
            pooler_bias=fp32(spec.pooler_bias),
        )

    def max_text_tokens(self, prompt_len: int) -> int:
        """Tokens (special ones included) an input may keep next to a prompt of this length."""
        return self.backbone.max_positions - prompt_len

    @torch.inference_mode()
    def forward(self, rows: Sequence[Row]) -> list[torch.Tensor]:
        """Logits for each row, in order: fp32 CPU tensors of shape [L of the row's task]."""
        return self._heads(rows, self.pooled(rows))

    @torch.inference_mode()
    def pooled(self, rows: Sequence[Row]) -> torch.Tensor:
        """Each row's pooled backbone output, what its task's head reads: fp32 [batch, hidden]."""
        assert rows, "forward needs at least one row"
        inputs_embeds, attention_mask, prompt_lens, text_lens = self._assemble(rows)
        hidden, first = self.backbone.encode(inputs_embeds, attention_mask)  # [b, seq, d], [b, d]
        pooled = self._pool(rows, hidden, first, prompt_lens, text_lens).float()  # [batch, hidden]
        return self._task_poolers(rows, pooled)

    def _assemble(
        self, rows: Sequence[Row]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather each row's prompt and token embeddings into one padded batch, in one index op."""
        device = self.backbone.device
        batch = len(rows)
        tasks = list({id(row.task): row.task for row in rows}.values())
        offsets, start = {}, 0
        for task in tasks:
            offsets[id(task)] = start
            start += task.prompt_len
        prompt_table = torch.cat([task.prompt for task in tasks])  # [sum of m, hidden]

        max_text = max(len(row.input_ids) for row in rows)
        # Padded in Python, then one tensor: each torch call from a model worker gives up the
        # GIL and must win it back from the HTTP thread, so a call per row costs idle waits.
        padded = [
            [*row.input_ids, *[self.pad_id] * (max_text - len(row.input_ids))] for row in rows
        ]
        ids = torch.tensor(padded, dtype=torch.long)  # [batch, max_text]
        token_embeds = self.backbone.model.get_input_embeddings()(
            ids.to(device)
        )  # [batch, text, hidden]
        zero = prompt_table.new_zeros(1, prompt_table.shape[1])
        source = torch.cat([prompt_table, token_embeds.reshape(-1, prompt_table.shape[1]), zero])

        prompt_lens = torch.tensor([row.task.prompt_len for row in rows])[:, None]  # [batch, 1]
        text_lens = torch.tensor([len(row.input_ids) for row in rows])[:, None]  # [batch, 1]
        prompt_offsets = torch.tensor([offsets[id(row.task)] for row in rows])[:, None]
        seq = int((prompt_lens + text_lens).max())
        pos = torch.arange(seq)[None, :]  # [1, seq]
        prompt_index = prompt_offsets + pos
        text_index = start + torch.arange(batch)[:, None] * max_text + (pos - prompt_lens)
        pad_index = torch.full_like(text_index, source.shape[0] - 1)
        index = torch.where(
            pos < prompt_lens,
            prompt_index,
            torch.where(pos < prompt_lens + text_lens, text_index, pad_index),
        )  # [batch, seq]
        inputs_embeds = source[index.to(device)]  # [batch, seq, hidden]
        attention_mask = (pos < prompt_lens + text_lens).long().to(device)  # [batch, seq]
        return inputs_embeds, attention_mask, prompt_lens.to(device), text_lens.to(device)

    @staticmethod
    def _pool(
        rows: Sequence[Row],
        hidden: torch.Tensor,
        first: torch.Tensor,
        prompt_lens: torch.Tensor,
        text_lens: torch.Tensor,
    ) -> torch.Tensor:
        """Each row pooled by its own task's rule."""
        rules = [row.task.reads for row in rows]
        if len(set(rules)) == 1:
            return pool(rules[0], hidden, first, prompt_lens, text_lens)
        by_rule = {rule: pool(rule, hidden, first, prompt_lens, text_lens) for rule in set(rules)}
        return torch.stack([by_rule[rule][i] for i, rule in enumerate(rules)])

    @staticmethod
    def _task_poolers(rows: Sequence[Row], pooled: torch.Tensor) -> torch.Tensor:
        """Rows of tasks with their own pooler: position 0 through tanh(D h + c)."""
        if all(row.task.pooler_weight is None for row in rows):  # the usual batch: nothing to do
            return pooled
        for indices in _by_task(rows).values():
            task = rows[indices[0]].task
            if task.pooler_weight is not None and task.pooler_bias is not None:
                mine = pooled[indices]  # [rows of task, hidden]
                pooled[indices] = torch.tanh(mine @ task.pooler_weight.T + task.pooler_bias)
        return pooled

    @staticmethod
    def _heads(rows: Sequence[Row], pooled: torch.Tensor) -> list[torch.Tensor]:
        """Apply each task's head to its own rows only."""
        logits: list[torch.Tensor | None] = [None] * len(rows)
        groups = _by_task(rows)
        for indices in groups.values():
            task = rows[indices[0]].task
            mine = pooled if len(groups) == 1 else pooled[indices]
            out = (mine @ task.head_weight.T + task.head_bias).cpu()  # [rows of task, L]
            for i, row_logits in zip(indices, out.unbind(0), strict=True):
                logits[i] = row_logits
        return [x for x in logits if x is not None]


def _by_task(rows: Sequence[Row]) -> dict[int, list[int]]:
    """Row indices of each task version in the batch."""
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(id(row.task), []).append(i)
    return groups


def pool(
    rule: str,
    hidden: torch.Tensor,
    first: torch.Tensor,
    prompt_lens: torch.Tensor,
    text_lens: torch.Tensor,
) -> torch.Tensor:
    """One pooling rule over a batch laid out as [prompt; text; padding], in fp32: [batch, hidden].

    Shared by serving and training, so both compute the same logits. `prompt_lens` and
    `text_lens` are [batch, 1]. Prompt positions and padding never count.
    """
    if rule == "first":
        return first.float()
    if rule == "position0":  # raw, for a task pooler (the backbone's pooler not applied)
        return hidden[:, 0].float()
    batch, seq, _ = hidden.shape
    if rule == "cls":
        return hidden[torch.arange(batch, device=hidden.device), prompt_lens[:, 0]].float()
    pos = torch.arange(seq, device=hidden.device)[None, :]
    text_mask = (pos >= prompt_lens) & (pos < prompt_lens + text_lens)  # [batch, seq]
    mean = (hidden.float() * text_mask[..., None]).sum(1) / text_lens.float()  # [batch, hidden]
    return F.normalize(mean, dim=-1) if rule == "mean-normalized" else mean
