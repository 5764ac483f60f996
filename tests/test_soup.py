"""recipes/soup.py: the mean of same-recipe prompt files is a valid task file of its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app.errors import InvalidPrompt
from app.prompt_file import BackboneIdentity, decode, encode
from recipes.soup import soup
from tests.helpers import random_spec

BACKBONE = BackboneIdentity("tiny", "0123456789abcdef", 8)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_the_soup_is_the_element_wise_mean(tmp_path: Path) -> None:
    specs = [random_spec(8, seed=seed) for seed in range(3)]
    paths = [write(tmp_path, f"s{i}.safetensors", encode(s, BACKBONE)) for i, s in enumerate(specs)]
    averaged, metadata = decode(soup(paths, "three seeds"), BACKBONE)
    assert torch.allclose(averaged.prompt, sum(s.prompt for s in specs) / 3)
    assert torch.allclose(averaged.head_weight, sum(s.head_weight for s in specs) / 3)
    assert torch.allclose(averaged.head_bias, sum(s.head_bias for s in specs) / 3)
    assert averaged.labels == specs[0].labels and averaged.description == "three seeds"
    assert metadata["backbone_fingerprint"] == BACKBONE.fingerprint
    assert [source["file"] for source in averaged.metrics["soup_of"]] == [
        "s0.safetensors",
        "s1.safetensors",
        "s2.safetensors",
    ]


def test_files_that_do_not_fit_together_are_refused(tmp_path: Path) -> None:
    base = random_spec(8, seed=0)
    first = write(tmp_path, "a.safetensors", encode(base, BACKBONE))
    relabelled = replace(random_spec(8, seed=1), labels=("x", "y", "z"))
    other_labels = write(tmp_path, "b.safetensors", encode(relabelled, BACKBONE))
    with pytest.raises(ValueError, match="labels differ"):
        soup([first, other_labels])
    longer = write(tmp_path, "c.safetensors", encode(random_spec(8, prompt_len=5), BACKBONE))
    with pytest.raises(ValueError, match="prompt length differs"):
        soup([first, longer])
    elsewhere = replace(BACKBONE, fingerprint="fedcba9876543210")
    other_backbone = write(tmp_path, "d.safetensors", encode(base, elsewhere))
    with pytest.raises(InvalidPrompt, match="another backbone"):
        soup([first, other_backbone])
