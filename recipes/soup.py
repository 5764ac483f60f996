"""A uniform model soup (Wortsman et al. 2022) of prompt files: the element-wise mean of their
prompts, head weights and head biases.

    python recipes/soup.py OUT.safetensors IN.safetensors IN.safetensors [...] [--description TEXT]

Meant for runs of one recipe that differ only in their seed. They start from the same prompt
only where the label names' tokens fill it (the vectors after them are vocabulary rows drawn
with the seed), and from heads fitted by the same probe. The inputs must agree on labels,
pooling, shapes and backbone; the output's metrics record the inputs (file, SHA-256, training
command), and the first input's training record stands for the recipe.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.prompt_file import BackboneIdentity, decode, encode  # noqa: E402


def soup(paths: list[Path], description: str | None = None) -> bytes:
    """The averaged task file's bytes. ValueError says which input does not fit the first."""
    with safe_open(paths[0], "pt") as first:
        meta = first.metadata() or {}
        hidden = int(first.get_slice("prompt").get_shape()[1])
    identity = BackboneIdentity(
        meta.get("backbone", ""), meta.get("backbone_fingerprint", ""), hidden
    )
    files = [path.read_bytes() for path in paths]
    specs = [decode(data, identity)[0] for data in files]  # refuses other backbones
    for path, spec in zip(paths[1:], specs[1:], strict=True):
        for what in ("labels", "pooling"):
            if getattr(spec, what) != getattr(specs[0], what):
                raise ValueError(f"{path}: {what} differ from {paths[0]}'s")
        if spec.prompt.shape != specs[0].prompt.shape:
            raise ValueError(f"{path}: prompt length differs from {paths[0]}'s")

    def mean(name: str) -> torch.Tensor:
        return torch.stack([getattr(spec, name) for spec in specs]).mean(0)

    sources = [
        {
            "file": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "command": spec.metrics.get("training", {}).get("command"),
        }
        for path, data, spec in zip(paths, files, specs, strict=True)
    ]
    averaged = replace(
        specs[0],
        prompt=mean("prompt"),
        head_weight=mean("head_weight"),
        head_bias=mean("head_bias"),
        description=specs[0].description if description is None else description,
        metrics={"soup_of": sources},
    )
    if "training" in specs[0].metrics:  # the first input's record stands for the recipe
        averaged.metrics["training"] = specs[0].metrics["training"]
    return encode(averaged, identity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("inputs", type=Path, nargs="+")
    parser.add_argument("--description")
    args = parser.parse_args()
    if len(args.inputs) < 2:
        parser.error("a soup needs at least two prompt files")
    args.out.write_bytes(soup(args.inputs, args.description))
    print(f"{args.out}: the mean of {len(args.inputs)} prompt files")


if __name__ == "__main__":
    main()
