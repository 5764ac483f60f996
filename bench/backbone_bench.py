"""Raw backbone throughput: a tight loop of batched forwards, the ceiling a server can approach."""

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from app.backbone import choose_attention, choose_device
from app.encoder import EagerEncoder, build_encoder

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass
class BackboneResult:
    seq_len: int  # prompt_len + text tokens
    best_batch_size: int
    rows_per_s: float
    ms_per_forward: float
    sweep_rows_per_s: dict[str, float] = field(default_factory=dict)  # "batch x loops" -> rows/s
    loops: int = 1  # forward loops run at once in the best layout


class ServedForward:
    """The backbone's forward exactly as promptserve runs it on `device`: same attention kernels,
    and on CPU TorchScript-traced when the trace checks out (app/encoder.py). Called like the HF
    model."""

    def __init__(self, model: PreTrainedModel, device: torch.device) -> None:
        self.config, self.dtype, self.device = model.config, model.dtype, device
        self.encode = build_encoder(model, device, trace=device.type == "cpu")
        self.traced = not isinstance(self.encode, EagerEncoder)

    def __call__(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> object:
        return self.encode(inputs_embeds, attention_mask)


def load_backbone(path: str, precision: str, device: str) -> tuple[Any, PreTrainedTokenizerBase]:
    """Loaded as promptserve loads it on `device` (auto: CUDA if present), in `precision`."""
    target = choose_device(device)
    model = AutoModel.from_pretrained(path, attn_implementation=choose_attention("auto", target))
    model = model.eval().requires_grad_(False).to(device=target, dtype=DTYPES[precision])
    model.loss_function = None  # as app/backbone.py: the trace must not make transformers warn
    return ServedForward(model, target), AutoTokenizer.from_pretrained(path)


def synchronize(device: torch.device) -> None:
    """Wait for the queued GPU work, so that a clock read after it counts it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> dict[str, float]:
    """Token counts of the texts, [CLS] and [SEP] included, as the server will see them."""
    counts = sorted(len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"])
    return {
        "mean": statistics.fmean(counts),
        "median": statistics.median(counts),
        "p90": counts[int(0.9 * (len(counts) - 1))],
        "max": counts[-1],
    }


def rows_per_second(
    model: PreTrainedModel, batch_size: int, seq_len: int, seconds: float, loops: int = 1
) -> tuple[float, float]:
    """(rows/s, ms per forward) of back-to-back forwards of one shape, `loops` threads at once.

    With loops > 1 each thread runs its own forwards on cores/loops torch threads: the layout
    promptserve's model workers use on CPU. The best of both layouts is the machine's ceiling.
    """
    if loops == 1:
        return _one_loop(model, batch_size, seq_len, seconds)
    cores = len(os.sched_getaffinity(0))
    results: list[tuple[float, float]] = []

    def worker() -> None:
        torch.set_num_threads(max(1, cores // loops))
        results.append(_one_loop(model, batch_size, seq_len, seconds))

    threads = [threading.Thread(target=worker) for _ in range(loops)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(r[0] for r in results), statistics.fmean(r[1] for r in results)


def _one_loop(
    model: PreTrainedModel, batch_size: int, seq_len: int, seconds: float
) -> tuple[float, float]:
    hidden, device = model.config.hidden_size, model.device
    embeds = 0.05 * torch.randn(batch_size, seq_len, hidden)  # [batch, seq, hidden]
    embeds = embeds.to(device=device, dtype=model.dtype)
    mask = torch.ones(batch_size, seq_len, dtype=torch.long, device=device)  # [batch, seq]
    with torch.inference_mode():
        for _ in range(2):  # first calls pick kernels and allocate
            model(inputs_embeds=embeds, attention_mask=mask)
        synchronize(device)
        forwards = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or forwards < 3:
            model(inputs_embeds=embeds, attention_mask=mask)
            forwards += 1
        synchronize(device)  # a GPU runs behind the loop: count the forwards still queued
        elapsed = time.perf_counter() - start
    return forwards * batch_size / elapsed, 1000 * elapsed / forwards


def measure_backbone(
    model: PreTrainedModel,
    batch_sizes: list[int],
    seq_len: int,
    sweep_seconds: float,
    seconds: float,
    layouts: list[int] | None = None,
) -> BackboneResult:
    """Sweep batch sizes briefly, then measure the fastest one for `seconds`."""
    if layouts is None:  # parallel loops count only on a CPU with cores for them
        cpu_cores = len(os.sched_getaffinity(0)) if model.device.type == "cpu" else 1
        layouts = [1, 2] if cpu_cores >= 2 else [1]
    sweep = {
        (size, loops): rows_per_second(model, size, seq_len, sweep_seconds, loops)[0]
        for loops in layouts
        for size in batch_sizes
    }
    best_size, best_loops = max(sweep, key=lambda shape: sweep[shape])
    rows_per_s, ms_per_forward = rows_per_second(model, best_size, seq_len, seconds, best_loops)
    by_shape = {f"{size}x{loops}": rate for (size, loops), rate in sweep.items()}
    return BackboneResult(seq_len, best_size, rows_per_s, ms_per_forward, by_shape, best_loops)
