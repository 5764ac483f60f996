#!/usr/bin/env bash
# Issue 2's GPU checks in one go, for the lent GPU machine (Python 3.12 with torch and
# transformers, no web stack, no network): install the carried wheels, show the GPU, build a
# random-weight bert-base, run tests/test_gpu.py and tests/test_gpu_training.py, run the
# benchmark at seq 128. About 3 minutes; every step is time-boxed (620 s at worst), so one hang
# cannot eat the others' time.
#
# Here first, once:  bench/gpu/prepare.sh   (fills .whl/: wheels, and the default backbone's
#                                            tokenizer and fp16 weights; ~49 MB)
# Then, on the device (carry [".whl"]):  bash bench/gpu/run.sh
#
# It writes under $OUT (default ./out): run.log (everything printed), bench.json (every figure),
# nvidia-smi.txt, promptserve.log and textbook.log (the servers' own logs).
#
# Environment:
#   SMALL=1        a tiny BERT and short loads: a dry run of this script, also on a CPU machine
#                  (with PROMPTSERVE_GPU_TEST_DEVICE=cpu the GPU tests then run on the CPU too)
#   WHEELS=DIR     wheels to install (default .whl); SKIP_INSTALL=1 installs nothing
#   SITE=DIR       where they are installed (default /tmp/site), put first on PYTHONPATH
#   MINILM=DIR     the default backbone, as prepare.sh writes it (default .whl/all-MiniLM-L6-v2-fp16):
#                  its uncased BERT tokenizer serves the random bert-base, its trained weights
#                  the precision-agreement test
#   DEVICE=NAME    the benchmark's device (default cuda; SMALL=1: auto)
#   VARIANTS=0     skip the last step, (b) again with one torch thread per model worker
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-./out}
SMALL=${SMALL:-0}
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/site}
MINILM=$(realpath "${MINILM:-.whl/all-MiniLM-L6-v2-fp16}")
WORK=${WORK:-/tmp/promptserve-gpu}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/run.log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
failed=()

# step NAME SECONDS COMMAND...: run COMMAND under a time limit, log its exit status, go on.
step() {
  local name=$1 limit=$2 started=$SECONDS rc
  shift 2
  echo; echo "=== $name (limit ${limit} s) $(date +%T)"
  timeout -k 10 "$limit" "$@"
  rc=$?
  echo "=== $name: exit $rc after $((SECONDS - started)) s"
  [ "$rc" -eq 0 ] || failed+=("$name (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out'))")
  return "$rc"
}

if [ "$SMALL" = 1 ]; then
  DEVICE=${DEVICE:-auto}
  BACKBONE=$WORK/bert-small-random
  TRAINED=$BACKBONE  # plumbing only: a dry run need not measure agreement
  build_flags=(--small)
  bench_flags=(--tasks 10 --concurrency 16 --loadgen-procs 2 --duration 3 --warmup 1
               --batch-sizes 8,16 --sweep-seconds 0.5 --num-texts 200)
else
  DEVICE=${DEVICE:-cuda}
  BACKBONE=$WORK/bert-base-random
  TRAINED=$MINILM
  build_flags=()
  # 256 clients in 4 processes; promptserve may batch as many rows as the raw sweep tries.
  bench_flags=(--tasks 100 --concurrency 256 --loadgen-procs 4 --duration 10 --warmup 3
               --batch-sizes 16,32,64,128,256 --sweep-seconds 1 --num-texts 1000
               --server-arg=--max-batch-size=256 --server-arg=--max-batch-tokens=32768)
fi

echo "promptserve GPU run: $(date -u +%FT%TZ), SMALL=$SMALL, DEVICE=$DEVICE, OUT=$OUT"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  step "install wheels from $WHEELS into $SITE" 60 "$PYTHON" -m pip install -q --no-index \
    --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl || {
    echo "cannot go on without the web stack"; exit 1; }
  # the default backbone (tests/test_gpu_training.py's tiny BERT borrows its tokenizer)
  export PYTHONPATH="$(bash bench/gpu/shim.sh "$MINILM" "$WORK/shim"):$SITE:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
if command -v nvidia-smi >/dev/null; then
  step "nvidia-smi" 15 bash -c "nvidia-smi | tee '$OUT/nvidia-smi.txt'"
else
  echo "no nvidia-smi on this machine"
fi
step "environment" 45 "$PYTHON" bench/gpu/environment.py || {
  echo "cannot go on: imports fail"; exit 1; }
step "build backbone $BACKBONE" 90 \
  "$PYTHON" bench/gpu/build_backbone.py --tokenizer "$MINILM" --out "$BACKBONE" \
  "${build_flags[@]}" || { echo "cannot go on without a backbone"; exit 1; }
step "GPU tests" 120 env PROMPTSERVE_GPU_TEST_BACKBONE="$BACKBONE" \
  PROMPTSERVE_GPU_TEST_TRAINED_BACKBONE="$TRAINED" \
  "$PYTHON" -m pytest tests/test_gpu.py tests/test_gpu_training.py -rA -p no:cacheprovider
bench=("$PYTHON" bench/run_bench.py --device "$DEVICE" --backbone "$BACKBONE" --precision bf16
       --prompt-len 20 --text-tokens 108 --loadgen asyncio --rounds 1 --quiet-timeout 5
       --ready-timeout 90 "${bench_flags[@]}")
step "benchmark" 200 "${bench[@]}" --work-dir "$WORK/bench" --json "$OUT/bench.json"
cp "$WORK"/bench/promptserve.log "$WORK"/bench/textbook.log "$OUT"/ 2>/dev/null
# The first GPU run's lead suspect for (b)'s idle GPU: the model worker's 16 OpenMP threads for
# its small CPU-side work. (b) again with one torch thread in the worker (bench-1thread.json).
if [ "${VARIANTS:-1}" = 1 ]; then
  step "benchmark (b), one torch thread per model worker" 90 "${bench[@]}" --parts promptserve \
    --work-dir "$WORK/bench-1thread" --json "$OUT/bench-1thread.json" \
    --server-arg=--threads-per-worker=1
fi

echo
if [ ${#failed[@]} -eq 0 ]; then
  echo "=== all steps passed in $SECONDS s; results in $OUT"
else
  echo "=== done in $SECONDS s; failed: ${failed[*]}; results in $OUT"
  exit 1
fi
