#!/usr/bin/env bash
# Issue 9.9, by hand (not in CI): a 2-process CPU torchrun training of the
# quickstart model (1 epoch = 2 iterations, then validation on 4 tiny images)
# run N times in a row (default 30); prints the failures and the count.
#   PYTHON=.venv/bin/python bash tests/torchrun_repeat.sh [N]
set -uo pipefail
N=${1:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
WORK=$(mktemp -d)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1
"$PYTHON" "$ROOT/tools/dataset_converters/make_shapes.py" "$WORK/data" \
  --num-train 8 --num-val 4 >/dev/null || exit 1
cat > "$WORK/cfg.py" <<CFG
_base_ = ['$ROOT/configs/quickstart/ssd_shapes.py']
data_root = '$WORK/data/'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(visualization=dict(draw=False))
find_unused_parameters = True  # ResNet-18's layer4 is built, not used
CFG
passed=0
for i in $(seq 1 "$N"); do
  port=$((29600 + i))
  if nice -n 5 "$PYTHON" -m torch.distributed.run --nproc_per_node=2 \
      --master_port=$port "$ROOT/tools/train.py" "$WORK/cfg.py" \
      --launcher pytorch --work-dir "$WORK/run$i" \
      --cfg-options env_cfg.dist_cfg.backend=gloo > "$WORK/run$i.log" 2>&1 \
      && grep -q 'Epoch(val) \[1\]' "$WORK/run$i.log"; then
    passed=$((passed + 1))
  else
    echo "run $i failed (log: $WORK/run$i.log):"
    grep -m3 -E 'terminate called|Signal|Error' "$WORK/run$i.log"
  fi
done
echo "$passed/$N runs passed"
