"""The encoder call: the backbone's forward as (hidden states, first-token pooled output).

On CPU it can run as a TorchScript trace: the whole forward then runs in C++ without taking
Python's GIL between ops, so the model workers and the HTTP thread stop queueing for it. A trace
is used only after it reproduced the eager model on other shapes than it was traced with;
otherwise the eager model serves and a warning says why.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch
from transformers import PreTrainedModel

log = logging.getLogger(__name__)

Encode = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (batch, seq, padded positions) of the trace example and of the shapes it must then reproduce
TRACE_SHAPE = (2, 12, 3)
CHECK_SHAPES = ((3, 17, 5), (1, 9, 0), (5, 40, 20))


class EagerEncoder(torch.nn.Module):
    """(last hidden state [batch, seq, hidden], pooled [batch, hidden]).

    Pooled is the backbone's pooler output (position 0 through its pooler, as HF PEFT pools),
    or position 0's hidden state for backbones without a pooler.
    """

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        hidden = out.last_hidden_state  # [batch, seq, hidden]
        pooled = getattr(out, "pooler_output", None)
        return hidden, hidden[:, 0] if pooled is None else pooled


def build_encoder(model: PreTrainedModel, device: torch.device, trace: bool) -> Encode:
    eager = EagerEncoder(model)
    if not trace:
        return eager
    try:
        # The tracer warns about every Python value it freezes; the checks below are the answer.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)  # deprecated attributes it walks past
            traced = torch.jit.trace(eager, _example(model, device, TRACE_SHAPE), check_trace=False)
            for shape in CHECK_SHAPES:
                _check_same(eager, traced, _example(model, device, shape))
    except Exception as exc:  # any architecture the tracer cannot follow: serve it eagerly
        log.warning("serving the backbone eagerly: its TorchScript trace failed (%s)", exc)
        return eager
    log.info("backbone traced with TorchScript (checked on %d other shapes)", len(CHECK_SHAPES))
    return traced  # type: ignore[no-any-return]


def _example(
    model: PreTrainedModel, device: torch.device, shape: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    batch, seq, padded = shape
    generator = torch.Generator().manual_seed(batch * 1000 + seq)
    hidden = int(model.config.hidden_size)
    embeds = torch.randn(batch, seq, hidden, generator=generator).to(device, model.dtype)
    mask = torch.ones(batch, seq, dtype=torch.long)  # [batch, seq]
    if padded:
        mask[::2, seq - padded :] = 0  # every other row padded: mixed masks, as in real batches
    return embeds, mask.to(device)


def _check_same(
    eager: torch.nn.Module, traced: torch.nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    for want, got in zip(eager(*inputs), traced(*inputs), strict=True):
        if want.shape != got.shape or not torch.allclose(want, got, atol=1e-3, rtol=1e-3):
            raise ValueError(
                f"trace differs from the model on inputs of shape {list(inputs[0].shape)}"
            )
