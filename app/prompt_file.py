"""The prompt file format: a safetensors file with a task's tensors and string metadata.

Tensors: ``prompt`` [m, d], ``head.weight`` [L, d], ``head.bias`` [L] (float32, float16 or bf16);
optionally ``pooler.weight`` [d, d] and ``pooler.bias`` [d], a task's own pooler (app/task.py).
Metadata (all strings): ``labels`` (JSON list, required unless given at upload), ``pooling``
(mean|mean-normalized|cls|first, default mean), ``backbone`` and ``backbone_fingerprint``
(checked when present), ``description``, ``metrics`` (JSON object). The registry adds ``task``,
``version``, ``created``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from app.errors import InvalidPrompt, short_message
from app.task import TaskSpec, as_float32, check_pooling

FORMAT = "promptserve.prompt/1"
TENSOR_NAMES = ("prompt", "head.weight", "head.bias")
POOLER_NAMES = ("pooler.weight", "pooler.bias")  # optional, together


@dataclass(frozen=True)
class BackboneIdentity:
    """Which backbone a prompt is for: a name, and a fingerprint that tells same-size ones apart."""

    name: str
    fingerprint: str
    hidden_size: int


def encode(
    spec: TaskSpec, backbone: BackboneIdentity, extra: dict[str, str] | None = None
) -> bytes:
    """Serialise a task into prompt-file bytes, stamped with the backbone it was made for."""
    metadata = {"format": FORMAT, **task_metadata(spec, backbone), **(extra or {})}
    tensors = {"prompt": spec.prompt, "head.weight": spec.head_weight, "head.bias": spec.head_bias}
    if spec.pooler_weight is not None and spec.pooler_bias is not None:
        tensors.update(zip(POOLER_NAMES, (spec.pooler_weight, spec.pooler_bias), strict=True))
    return save_safetensors({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def encode_version(
    spec: TaskSpec, backbone: BackboneIdentity, task: str, version: int, created: str
) -> bytes:
    """A registry's copy of a version: the file, stamped with its task id, number and time."""
    return encode(spec, backbone, {"task": task, "version": str(version), "created": created})


def task_metadata(spec: TaskSpec, backbone: BackboneIdentity) -> dict[str, str]:
    """What a file says of its task beyond the tensors: labels, pooling, backbone, free text."""
    return {
        "labels": json.dumps(list(spec.labels)),
        "pooling": spec.pooling,
        "backbone": backbone.name,
        "backbone_fingerprint": backbone.fingerprint,
        "description": spec.description,
        "metrics": json.dumps(spec.metrics),
    }


def decode(
    data: bytes,
    backbone: BackboneIdentity,
    labels: list[str] | None = None,
    description: str | None = None,
) -> tuple[TaskSpec, dict[str, str]]:
    """Parse and validate prompt-file bytes for `backbone`; `labels`, `description` override.

    Returns the task and the file's raw metadata. Raises InvalidPrompt naming what is wrong.
    """
    tensors, metadata = read_safetensors(data)
    _check_backbone(metadata, backbone)
    unknown = sorted(set(tensors) - set(TENSOR_NAMES) - set(POOLER_NAMES))
    if unknown:
        raise InvalidPrompt(
            f"unexpected tensor(s) {unknown}; a prompt file holds {list(TENSOR_NAMES)} "
            f"(and {list(POOLER_NAMES)} for a task with its own pooler)"
        )
    missing = [name for name in TENSOR_NAMES if name not in tensors]
    if missing:
        raise InvalidPrompt(
            f"missing tensor(s) {missing}; a prompt file holds {list(TENSOR_NAMES)}"
        )
    prompt = as_float32("prompt", tensors["prompt"])
    if prompt.ndim == 2 and prompt.shape[1] != backbone.hidden_size:
        raise InvalidPrompt(
            f"prompt has shape {list(prompt.shape)} but this backbone's hidden size is "
            f"{backbone.hidden_size}: it was made for another backbone"
        )
    spec = TaskSpec(
        prompt=prompt,
        head_weight=as_float32("head.weight", tensors["head.weight"]),
        head_bias=as_float32("head.bias", tensors["head.bias"]),
        labels=tuple(labels if labels is not None else json_field(metadata, "labels", list, [])),
        pooling=check_pooling(metadata.get("pooling", "mean")),
        description=description if description is not None else metadata.get("description", ""),
        metrics=json_field(metadata, "metrics", dict, {}),
        pooler_weight=_optional(tensors, POOLER_NAMES[0]),
        pooler_bias=_optional(tensors, POOLER_NAMES[1]),
    )
    return spec, metadata


def _optional(tensors: dict[str, torch.Tensor], name: str) -> torch.Tensor | None:
    return as_float32(name, tensors[name]) if name in tensors else None


# What malformed bytes raise while read: from the Rust reader, or its header's JSON
UNREADABLE = (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError, RecursionError)


def read_safetensors(
    data: bytes, what: str = "not"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of safetensors bytes; InvalidPrompt ("{what} a valid safetensors
    file: ...") for anything else, malformed headers and their JSON included."""
    try:
        tensors = load_safetensors(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except UNREADABLE as exc:
        raise InvalidPrompt(f"{what} a valid safetensors file: {short_message(exc)}") from None
    return tensors, header.get("__metadata__") or {}


def _check_backbone(metadata: dict[str, str], backbone: BackboneIdentity) -> None:
    fingerprint = metadata.get("backbone_fingerprint")
    if fingerprint and fingerprint != backbone.fingerprint:
        made_for = metadata.get("backbone", "unknown")
        raise InvalidPrompt(
            f"prompt was made for another backbone ({made_for!r}, fingerprint {fingerprint}); "
            f"this server runs {backbone.name!r} (fingerprint {backbone.fingerprint})"
        )


def json_field(
    metadata: dict[str, str], key: str, kind: type, default: Any, where: str = "metadata"
) -> Any:
    """A JSON-encoded metadata value of the given type; InvalidPrompt names the bad key."""
    raw = metadata.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # also: nested too deep, integers too long
        raise InvalidPrompt(f"{where} {key!r} is not valid JSON: {short_message(exc)}") from None
    if not isinstance(value, kind):
        raise InvalidPrompt(f"{where} {key!r} must be a JSON {kind.__name__}")
    return value
