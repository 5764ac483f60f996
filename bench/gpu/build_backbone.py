"""Build a random-weight BERT backbone directory (config, weights, uncased tokenizer) offline.

The GPU benchmark needs a bert-base-sized encoder on a machine with no network: BertConfig's
defaults are bert-base (hidden 768, 12 layers, 12 heads, 512 positions), and the tokenizer is
all-MiniLM-L6-v2's, which has the same uncased BERT vocabulary (30,522 word pieces).

    python bench/gpu/build_backbone.py --tokenizer DIR --out /tmp/bert-base-random
    python bench/gpu/build_backbone.py --tokenizer DIR --out /tmp/bert-small --small
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, BertConfig, BertModel

# A few-MB stand-in for dry runs of the GPU script on a CPU: same code paths, tiny cost.
SMALL: dict[str, Any] = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 512,
}


def build(tokenizer_dir: str, out: Path, small: bool, seed: int) -> BertConfig:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, **(SMALL if small else {}))
    torch.manual_seed(seed)
    model = BertModel(config).eval()  # random weights, BERT's own initialisation
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", required=True, help="directory of a BERT uncased tokenizer")
    parser.add_argument("--out", type=Path, required=True, help="directory to write")
    parser.add_argument("--small", action="store_true", help="a tiny BERT, for dry runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    config = build(args.tokenizer, args.out, args.small, args.seed)
    print(
        f"built {args.out}: hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
        f"{config.num_attention_heads} heads, vocab {config.vocab_size}, "
        f"{config.max_position_embeddings} positions ({time.perf_counter() - started:.1f} s)"
    )


if __name__ == "__main__":
    main()
