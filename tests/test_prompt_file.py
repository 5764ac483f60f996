"""The prompt file format: what it accepts, what it refuses, and that every refusal says why."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from app import prompt_file
from app.errors import InvalidPrompt
from tests.helpers import bad_prompt_files, identity, prompt_bytes, random_spec, tensors_bytes

BACKBONE = identity(hidden=32)


def test_encoded_task_decodes_to_the_same_task_stamped_with_its_backbone() -> None:
    spec = random_spec(32, prompt_len=5, num_labels=4, pooling="cls", seed=3)
    spec = type(spec)(
        spec.prompt,
        spec.head_weight,
        spec.head_bias,
        spec.labels,
        spec.pooling,
        description="sentiment v1",
        metrics={"accuracy": 0.91},
    )
    data = prompt_file.encode(spec, BACKBONE, extra={"task": "sentiment"})

    decoded, metadata = prompt_file.decode(data, BACKBONE)

    assert torch.equal(decoded.prompt, spec.prompt)
    assert torch.equal(decoded.head_weight, spec.head_weight)
    assert torch.equal(decoded.head_bias, spec.head_bias)
    assert (decoded.labels, decoded.pooling) == (spec.labels, "cls")
    assert (decoded.description, decoded.metrics) == ("sentiment v1", {"accuracy": 0.91})
    assert metadata["backbone_fingerprint"] == BACKBONE.fingerprint
    assert metadata["task"] == "sentiment"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_are_accepted_as_float32(dtype: torch.dtype) -> None:
    spec = random_spec(32)
    tensors = {
        "prompt": spec.prompt.to(dtype),
        "head.weight": spec.head_weight.to(dtype),
        "head.bias": spec.head_bias.to(dtype),
    }
    labels = {"labels": json.dumps(list(spec.labels))}
    decoded, _ = prompt_file.decode(tensors_bytes(tensors, labels), BACKBONE)
    assert decoded.prompt.dtype == torch.float32
    assert torch.allclose(decoded.prompt, spec.prompt, atol=0.02, rtol=0.02)


def test_labels_and_description_given_at_upload_override_the_file() -> None:
    spec = random_spec(32, num_labels=2)
    decoded, _ = prompt_file.decode(
        prompt_bytes(spec, {"description": "old"}),
        BACKBONE,
        labels=["neg", "pos"],
        description="new",
    )
    assert (decoded.labels, decoded.description) == (("neg", "pos"), "new")


def test_labels_given_at_upload_make_a_file_without_labels_valid() -> None:
    spec = random_spec(32, num_labels=2)
    data = prompt_bytes(spec, labels=False)
    decoded, _ = prompt_file.decode(data, BACKBONE, labels=["neg", "pos"])
    assert decoded.labels == ("neg", "pos")


def test_pooling_defaults_to_mean() -> None:
    spec = random_spec(32)
    tensors = {"prompt": spec.prompt, "head.weight": spec.head_weight, "head.bias": spec.head_bias}
    labels = {"labels": json.dumps(list(spec.labels))}
    decoded, _ = prompt_file.decode(tensors_bytes(tensors, labels), BACKBONE)
    assert decoded.pooling == "mean"


def test_a_prompt_made_for_another_backbone_is_refused_naming_both() -> None:
    """Same hidden size, different model: only the fingerprint tells them apart."""
    other = identity(hidden=32, name="other-bert", fingerprint="feedfacefeedface")
    data = prompt_file.encode(random_spec(32), other)
    with pytest.raises(InvalidPrompt, match="another backbone") as refused:
        prompt_file.decode(data, BACKBONE)
    assert "other-bert" in str(refused.value) and BACKBONE.name in str(refused.value)


@pytest.mark.parametrize(("data", "words"), bad_prompt_files())
def test_a_bad_prompt_file_is_refused_naming_what_is_wrong(data: bytes, words: str) -> None:
    with pytest.raises(InvalidPrompt) as refused:
        prompt_file.decode(data, BACKBONE)
    assert words.lower() in str(refused.value).lower()


class _TouchOnUnpickle:
    """A pickle that, if anything ever unpickled it, would create a file: code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def _torch_saved(obj: object) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"prompt": obj}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("via", [pickle.dumps, _torch_saved], ids=["pickle", "torch.save"])
def test_a_pickle_is_refused_without_ever_being_unpickled(
    tmp_path: Path, via: Callable[[object], bytes]
) -> None:
    marker = tmp_path / "code-ran"
    data = via(_TouchOnUnpickle(marker))
    with pytest.raises(InvalidPrompt, match="not a valid safetensors"):
        prompt_file.decode(data, BACKBONE)
    assert not marker.exists()
