#!/usr/bin/env bash
# Both baselines of issue 3 on all five tasks, smallest task first (a run cut short keeps what it
# finished: each script rewrites its JSON after every task). Run from anywhere:
#   bench/baselines/run_all.sh [OUT_DIR] [extra flags for both scripts, e.g. --limit 64 --device cpu]
# Environment: DATA (default ../shared/data), TASKS (default all five), SST2_EPOCHS (default 1).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=bench/baselines/results
if [[ $# -gt 0 && $1 != -* ]]; then out=$1; shift; fi
data=${DATA:-../shared/data}
tasks=${TASKS:-question-type,spam,topic,intent,sentiment}
# SST-2 train is 66k rows, 10x the others: one epoch of PEFT's recipe (its range is 1-3) keeps both
# baselines for all five tasks inside the GPU run's time box.
sst2_epochs=${SST2_EPOCHS:-1}
status=0
python3 bench/baselines/probe.py --data-dir "$data" --tasks "$tasks" --out "$out/probe.json" "$@" \
  || status=1
python3 bench/baselines/peft_default.py --data-dir "$data" --tasks "$tasks" \
  --task-epochs "sentiment=$sst2_epochs" --out "$out/peft_default.json" "$@" || status=1
python3 bench/baselines/table.py "$out"/probe.json "$out"/peft_default.json || status=1
exit $status
