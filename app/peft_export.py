"""A task written as an HF PEFT prompt-tuning adapter that PeftModel loads with equal logits.

Only tasks with pooling ``first`` can be written: PEFT's sequence classifier always reads
position 0, through the backbone's pooler on BERT-style models, through its own dense layer on
RoBERTa-style ones (see peft_format.py): a task with its own pooler exports to the latter, one
without to the former. The label names and our backbone stamp ride in the safetensors metadata,
which PEFT ignores and `task_from_adapter` reads back.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from app import prompt_file
from app.errors import InvalidPrompt
from app.peft_format import (
    CARD_FILE,
    CONFIG_FILE,
    DENSE_HEAD_MODEL_TYPES,
    HEAD_KEYS,
    HUB_IDS,
    PROMPT_KEY,
    ROBERTA_HEAD_KEYS,
    WEIGHTS_FILE,
    check_pools_like_peft,
)
from app.prompt_file import BackboneIdentity
from app.task import TaskSpec


def adapter_from_task(spec: TaskSpec, backbone: BackboneIdentity) -> dict[str, bytes]:
    """The adapter files of a task, loadable by ``PeftModel.from_pretrained`` with equal logits."""
    if spec.pooling != "first":
        raise InvalidPrompt(
            f"task pools {spec.pooling!r}, which PEFT cannot express: PEFT's sequence classifier "
            "always reads position 0 (the first virtual token), through the backbone's pooler "
            "or RoBERTa's dense head, so only tasks with pooling 'first' export with the same "
            "predictions"
        )
    model_config = check_pools_like_peft(backbone.name, required=True)
    tensors = {PROMPT_KEY: spec.prompt.contiguous(), **_head_tensors(spec, model_config)}
    base_model = HUB_IDS.get(backbone.name, backbone.name)
    config = {
        "peft_type": "PROMPT_TUNING",
        "task_type": "SEQ_CLS",
        "num_virtual_tokens": spec.prompt_len,
        "token_dim": spec.hidden_size,
        "num_transformer_submodules": 1,
        "num_attention_heads": model_config.get("num_attention_heads"),
        "num_layers": model_config.get("num_hidden_layers"),
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "tokenizer_name_or_path": None,
        "base_model_name_or_path": base_model,
        "inference_mode": True,
        "modules_to_save": ["classifier", "score"],
    }
    metadata = {"format": "pt", **prompt_file.task_metadata(spec, backbone)}
    return {
        CONFIG_FILE: (json.dumps(config, indent=2) + "\n").encode(),
        WEIGHTS_FILE: save_safetensors(tensors, metadata=metadata),
        CARD_FILE: _model_card(spec, base_model).encode(),
    }


def _head_tensors(spec: TaskSpec, model_config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The classifier as the backbone's PEFT model holds it; InvalidPrompt where it cannot."""
    model_type = model_config.get("model_type")
    dense_model = model_type in DENSE_HEAD_MODEL_TYPES
    if spec.pooler_weight is None or spec.pooler_bias is None:
        if dense_model:
            raise InvalidPrompt(
                f"the backbone is a {model_type!r} model, whose PEFT classifier reads position 0 "
                "through its own dense layer, not the backbone's pooler that this task reads"
            )
        plain = (spec.head_weight, spec.head_bias)
        return {key: t.contiguous() for key, t in zip(HEAD_KEYS, plain, strict=True)}
    if not dense_model:
        raise InvalidPrompt(
            f"the task has its own pooler (a RoBERTa-style head), but the backbone is a "
            f"{model_type!r} model, whose PEFT classifier is the backbone's pooler and one layer"
        )
    head = (spec.pooler_weight, spec.pooler_bias, spec.head_weight, spec.head_bias)
    return {key: t.contiguous() for key, t in zip(ROBERTA_HEAD_KEYS, head, strict=True)}


def _model_card(spec: TaskSpec, base_model: str) -> str:
    id2label = dict(enumerate(spec.labels))
    return f"""---
library_name: peft
base_model: {base_model}
tags: [prompt-tuning, promptserve]
---
# Prompt-tuning adapter exported by promptserve

{spec.description or "A text classifier."} Labels, in head order: {list(spec.labels)}.
{spec.prompt_len} virtual tokens; the label names are also in adapter_model.safetensors' metadata.

```python
from peft import PeftModel
from transformers import AutoModelForSequenceClassification

base = AutoModelForSequenceClassification.from_pretrained(
    "{base_model}", num_labels={len(spec.labels)}, id2label={id2label!r}
)
model = PeftModel.from_pretrained(base, "path/to/this/directory").eval()
```
"""
