"""Register prompt files as tasks in a registry directory (the shipped `prompts/`).

    python recipes/install.py --prompts-dir prompts FILE.safetensors [...]

Each file becomes its task's next version (task id = the file's name without extension), checked
against the default backbone exactly as an upload would be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.backbone import load_backbone  # noqa: E402
from app.registry import Registry  # noqa: E402
from app.settings import DEFAULT_BACKBONE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--prompts-dir", type=Path, default=Path("prompts"))
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    args = parser.parse_args()
    backbone = load_backbone(args.backbone, device="cpu", trace="off")
    registry = Registry(args.prompts_dir, backbone.identity, backbone.max_prompt_len)
    registry.load()
    for file in args.files:
        info = registry.add_version(file.stem, file.read_bytes())
        print(f"{file.stem}: version {info.version} in {args.prompts_dir}")


if __name__ == "__main__":
    main()
