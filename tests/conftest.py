"""Fixtures: a tiny random BERT saved to disk and loaded through the real loading code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.backbone import Backbone, load_backbone
from app.settings import Settings
from tests.helpers import prompt_bytes, random_spec, upload
from tests.tiny_backbone import save_tiny_backbone


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and the default backbone's real tokenizer."""
    return save_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_backbone(tiny_backbone_dir: Path) -> Backbone:
    return load_backbone(str(tiny_backbone_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def trainer_backbone(tiny_backbone_dir: Path) -> Backbone:
    """The tiny BERT as the trainer loads it: fp32, eager, not traced."""
    return load_backbone(str(tiny_backbone_dir), device="cpu", precision="fp32", trace="off")


def wait_ready(client: TestClient, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "server never became ready"
        time.sleep(0.02)


@pytest.fixture
def make_client(tmp_path: Path, tiny_backbone: Backbone) -> Iterator:
    """Build an app over the tiny backbone with any settings; yields a ready TestClient."""
    clients: list[TestClient] = []

    def build(**overrides: object) -> TestClient:
        settings = Settings(prompts_dir=tmp_path / "prompts", **overrides)  # type: ignore[arg-type]
        client = TestClient(create_app(settings, backbone=tiny_backbone))
        client.__enter__()
        clients.append(client)
        wait_ready(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:  # type: ignore[no-untyped-def]
    return make_client()


@pytest.fixture
def served(client):  # type: ignore[no-untyped-def]
    """A client with one task, 't', at version 1."""
    assert upload(client, "t", prompt_bytes(random_spec(32))).status_code == 201
    return client
