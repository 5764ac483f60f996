"""Raw backbone throughput: a tight loop of batched forwards, the ceiling a server can approach."""

import statistics
import time
from dataclasses import dataclass, field

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass
class BackboneResult:
    seq_len: int  # prompt_len + text tokens
    best_batch_size: int
    rows_per_s: float
    ms_per_forward: float
    sweep_rows_per_s: dict[int, float] = field(default_factory=dict)


def load_backbone(path: str, precision: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    model = AutoModel.from_pretrained(path).eval().to(DTYPES[precision])
    return model, AutoTokenizer.from_pretrained(path)


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> dict[str, float]:
    """Token counts of the texts, [CLS] and [SEP] included, as the server will see them."""
    counts = sorted(len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"])
    return {
        "mean": statistics.fmean(counts),
        "median": statistics.median(counts),
        "p90": counts[int(0.9 * (len(counts) - 1))],
        "max": counts[-1],
    }


def _rows_per_second(
    model: PreTrainedModel, batch_size: int, seq_len: int, seconds: float
) -> tuple[float, float]:
    """(rows/s, ms per forward) of back-to-back forwards of one fixed shape for `seconds`."""
    embeds = 0.05 * torch.randn(
        batch_size, seq_len, model.config.hidden_size
    )  # [batch, seq, hidden]
    embeds = embeds.to(model.dtype)
    mask = torch.ones(batch_size, seq_len, dtype=torch.long)  # [batch, seq]
    with torch.inference_mode():
        for _ in range(2):  # first calls pick kernels and allocate
            model(inputs_embeds=embeds, attention_mask=mask)
        forwards = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or forwards < 3:
            model(inputs_embeds=embeds, attention_mask=mask)
            forwards += 1
    return forwards * batch_size / elapsed, 1000 * elapsed / forwards


def measure_backbone(
    model: PreTrainedModel,
    batch_sizes: list[int],
    seq_len: int,
    sweep_seconds: float,
    seconds: float,
) -> BackboneResult:
    """Sweep batch sizes briefly, then measure the fastest one for `seconds`."""
    sweep = {size: _rows_per_second(model, size, seq_len, sweep_seconds)[0] for size in batch_sizes}
    best = max(sweep, key=lambda size: sweep[size])
    rows_per_s, ms_per_forward = _rows_per_second(model, best, seq_len, seconds)
    return BackboneResult(seq_len, best, rows_per_s, ms_per_forward, sweep)
