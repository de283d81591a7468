#!/usr/bin/env bash
# The GPU checks of issue 11, in one run of a few minutes on one CUDA machine:
#   1. the tests that need CUDA (tests/test_cuda.py) and the loop tests;
#   2. the loop benchmark at the reference configurations and the paper batch (32), every mode;
#   3. the first 200 iterations of the paper preset for modernn, with the full run's estimate;
#   4. a 2-rank torchrun smoke run when the machine has two GPUs.
# Everything printed goes to $OUT/gpu_checks.txt (default results/gpu/); commit it from there.
set -u
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
stage() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }
{
  stage "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.get_device_name(), '| GPUs:', torch.cuda.device_count())"
  git log -1 --format='commit %H %s' 2>/dev/null || true

  stage "CUDA tests"
  timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_loop.py

  stage "loop benchmark: eager modes, three models"
  timeout 150 $PY -m bench.loop_bench --modes eager-fp32-sync eager bf16
  stage "loop benchmark: compiled modes, modernn"
  timeout 300 $PY -m bench.loop_bench --models modernn \
      --modes eager-fp32-sync compile+bf16 reduce-overhead+bf16 compile
  stage "loop benchmark: compiled, convlstm and predrnn"
  timeout 200 $PY -m bench.loop_bench --models convlstm predrnn --modes eager-fp32-sync compile+bf16

  stage "paper preset, first 200 iterations: modernn"
  timeout 300 $PY run_bench.py --models modernn --preset paper --epochs 1 --steps 200 \
      --device cuda --no-progress --out /tmp/gpu-results
  $PY - <<'PYEOF'
import json, glob
for path in glob.glob("/tmp/gpu-results/*/paper/records.jsonl"):
    for line in open(path):
        r = json.loads(line)
        t = r.get("train") or {}
        print(r["model"], r["status"], r.get("error"), "| device", r["device_name"], r["precision"],
              r["device_settings"], "| iteration_s", t.get("iteration_s"), "| train wall_s",
              t.get("wall_s"), "| cell wall_s", r["wall_s"], "| estimate", r.get("estimate"))
        if t.get("iteration_s"):
            print(f"paper preset (80,000 iterations) at this speed: {80000 * t['iteration_s'] / 3600:.1f} h")
PYEOF

  if [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    stage "torchrun, 2 ranks"
    timeout 200 torchrun --nproc_per_node=2 run_bench.py --models convlstm --preset smoke \
        --device cuda --no-progress --out /tmp/gpu-ddp
  else
    stage "torchrun, 2 ranks: skipped (one GPU on this machine)"
  fi
} 2>&1 | tee "$OUT/gpu_checks.txt"
