"""An fp16 copy of the default backbone (44 MiB instead of 87) for a machine that can only be sent
64 MiB: for a bf16-autocast run it is as good as the fp32 weights (README.md, "Checked").

    python bench/baselines/export_backbone.py .gpu-backbone   # then: --backbone .gpu-backbone
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from run_env import backbone_path
from transformers import AutoModel, AutoTokenizer

# sentence-transformers' settings the probe reads: 256-token cut, L2 normalisation
SENTENCE_TRANSFORMERS_FILES = ("sentence_bert_config.json", "modules.json")


def export(target: Path) -> None:
    source = Path(backbone_path("default"))
    AutoModel.from_pretrained(source, dtype=torch.float16).save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    for name in SENTENCE_TRANSFORMERS_FILES:
        shutil.copy(source / name, target / name)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    export(Path(sys.argv[1]))
