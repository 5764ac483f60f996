"""Write a random prompt file for a running server's backbone, base64-encoded, to stdout.

The docker smoke test pipes this into the service container (`python3 - < scripts/smoke_prompt.py`),
so the file is made by the project's own encoder and stamped with the backbone identity the server
reports at /info: it is accepted as a prompt for that backbone, with arbitrary predictions.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.request

import torch

from app.prompt_file import BackboneIdentity, encode
from app.task import TaskSpec

LABELS = ("negative", "positive")
PROMPT_LEN = 8


def server_backbone(base_url: str) -> BackboneIdentity:
    with urllib.request.urlopen(f"{base_url}/info", timeout=10) as response:
        info = json.load(response)
    return BackboneIdentity(info["backbone"], info["backbone_fingerprint"], info["hidden_size"])


def random_task(hidden_size: int, seed: int = 0) -> TaskSpec:
    generator = torch.Generator().manual_seed(seed)
    return TaskSpec(
        prompt=torch.randn(PROMPT_LEN, hidden_size, generator=generator) * 0.5,  # [m, d]
        head_weight=torch.randn(len(LABELS), hidden_size, generator=generator),  # [L, d]
        head_bias=torch.zeros(len(LABELS)),  # [L]
        labels=LABELS,
        description="docker smoke test: random weights",
    )


def main() -> int:
    port = os.environ.get("PROMPTSERVE_PORT", "8000")
    backbone = server_backbone(f"http://127.0.0.1:{port}")
    data = encode(random_task(backbone.hidden_size), backbone)
    sys.stdout.write(base64.b64encode(data).decode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
