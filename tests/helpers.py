"""Builders shared by the tests: random tasks and prompt files."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from fastapi.testclient import TestClient
from safetensors.torch import save

from app.prompt_file import BackboneIdentity
from app.task import TaskSpec

MakeClient = Callable[..., TestClient]  # the `make_client` fixture: settings overrides -> client


class Response(Protocol):
    """What the tests read of an HTTP response (the TestClient's and httpx's alike)."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


def random_spec(
    hidden: int, prompt_len: int = 4, num_labels: int = 3, pooling: str = "mean", seed: int = 0
) -> TaskSpec:
    g = torch.Generator().manual_seed(seed)
    return TaskSpec(
        prompt=torch.randn(prompt_len, hidden, generator=g) * 0.5,
        head_weight=torch.randn(num_labels, hidden, generator=g),
        head_bias=torch.randn(num_labels, generator=g),
        labels=tuple(f"label{i}" for i in range(num_labels)),
        pooling=pooling,  # type: ignore[arg-type]
    )


def prompt_bytes(
    spec: TaskSpec, metadata: dict[str, str] | None = None, labels: bool = True
) -> bytes:
    """A prompt file as a user would write it by hand: no backbone stamp unless given."""
    meta: dict[str, str] = {"pooling": spec.pooling}
    if labels:
        meta["labels"] = json.dumps(list(spec.labels))
    meta.update(metadata or {})
    tensors = {"prompt": spec.prompt, "head.weight": spec.head_weight, "head.bias": spec.head_bias}
    return save(tensors, metadata=meta)


def identity(
    hidden: int = 32, name: str = "tiny-bert", fingerprint: str = "0123456789abcdef"
) -> BackboneIdentity:
    """A backbone identity for tests that need no model (registry, prompt files)."""
    return BackboneIdentity(name, fingerprint, hidden)


def tensors_bytes(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """A safetensors file with exactly these tensors and metadata (to build broken prompt files)."""
    return save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def upload(
    client: TestClient, task: str, data: bytes, token: str | None = None, **form: str
) -> Response:
    """PUT a prompt file (with optional form fields) the way a user's HTTP client would."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.put(
        f"/prompts/{task}", files={"file": ("p.safetensors", data)}, data=form, headers=headers
    )


def classify(client: TestClient, task: str, inputs: str | list[str], **fields: object) -> Response:
    return client.post("/classify", json={"task": task, "inputs": inputs, **fields})


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics parsed with prometheus_client: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def assert_error(
    response: Response, status: int, kind: str | None = None, says: str = ""
) -> dict[str, str]:
    """The one error shape: {"error": {"type", "message"}}, with the status and words we expect."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    if kind is not None:
        assert body["error"]["type"] == kind, body
    assert says.lower() in body["error"]["message"].lower(), body
    return body["error"]


def _pickle_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"prompt": torch.zeros(4, 32)}, buffer)
    return buffer.getvalue()


def bad_prompt_files(hidden: int = 32) -> list[object]:
    """One pytest param (file bytes, words the refusal must say) per way a prompt file is wrong."""
    import pytest

    spec = random_spec(hidden)
    ok = {"prompt": spec.prompt, "head.weight": spec.head_weight, "head.bias": spec.head_bias}
    labels = {"labels": json.dumps(list(spec.labels))}

    def file(metadata: dict[str, str] | None = None, **tensors: torch.Tensor) -> bytes:
        """The good file with tensors replaced (`head__bias` is head.bias) or metadata added."""
        renamed = {name.replace("__", "."): t for name, t in tensors.items()}
        return tensors_bytes({**ok, **renamed}, {**labels, **(metadata or {})})

    nan_prompt = spec.prompt.clone()
    nan_prompt[0, 0] = float("nan")
    inf_bias = spec.head_bias.clone()
    inf_bias[1] = float("inf")
    stranger = {"backbone": "bert-large", "backbone_fingerprint": "ffff0000ffff0000"}
    wider = random_spec(hidden * 2)
    no_bias = {"prompt": spec.prompt, "head.weight": spec.head_weight}
    cases = [
        ("head-wrong-width", file(head__weight=torch.randn(3, hidden // 2)), "head.weight has"),
        ("bias-wrong-rows", file(head__bias=torch.randn(2)), "head.bias has shape"),
        ("prompt-1d", file(prompt=torch.randn(hidden)), "prompt"),
        ("int32-tensor", file(prompt=torch.ones(4, hidden, dtype=torch.int32)), "dtype"),
        ("float64-tensor", file(head__bias=torch.zeros(3, dtype=torch.float64)), "dtype"),
        ("nan-values", file(prompt=nan_prompt), "non-finite"),
        ("inf-values", file(head__bias=inf_bias), "non-finite"),
        ("other-backbone-fingerprint", file(stranger), "another backbone"),
        ("other-hidden-size", prompt_bytes(wider), "another backbone"),
        ("garbage-bytes", b"this is not a prompt file at all" * 4, "not a valid safetensors"),
        ("empty-file", b"", "not a valid safetensors"),
        ("torch-pickle", _pickle_bytes(), "not a valid safetensors"),
        ("missing-labels", tensors_bytes(ok), "missing labels"),
        ("label-count", file({"labels": '["a", "b"]'}), "2 labels given but the head has 3 rows"),
        ("labels-not-json", file({"labels": "a,b,c"}), "labels"),
        ("duplicate-labels", file({"labels": '["a", "a", "b"]'}), "distinct"),
        ("missing-tensor", tensors_bytes(no_bias, labels), "missing tensor"),
        ("bad-pooling", file({"pooling": "max"}), "pooling 'max'"),
        ("prompt-len-0", file(prompt=torch.zeros(0, hidden)), "prompt"),
        ("prompt-len-129", file(prompt=torch.randn(129, hidden)), "allowed 1 to 128"),
    ]
    return [pytest.param(data, words, id=name) for name, data, words in cases]
