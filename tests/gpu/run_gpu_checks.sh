#!/usr/bin/env bash
# The GPU checks, most valuable first, each stage under its own time limit; about 6 minutes on
# one H200 (the limits add up to 350 s):
#   1. the speed table: the loop benchmark's cumulative modes (eager, +cuda_graph, +fused_norm,
#      +fused_convs; +bf16 and +channels_last on top) for modernn (with a torch.profiler summary
#      of every mode: top kernels and kernel launches, under $OUT/profiles/; the fastest named),
#      then convlstm and predrnn; then +compile (cumulative) for modernn, and reduce-overhead
#      alone with TORCH_LOGS=recompiles,cudagraphs;
#   2. `run_bench.py verify --device cuda`, where this checkout has that subcommand;
#   3. the paper preset's first iterations for modernn with the captured step, the full run's
#      estimate and the record's device settings;
#   4. the CUDA tests (tests/test_cuda.py: the captured step against eager among them);
#   5. a 2-rank torchrun smoke run when the machine has two GPUs.
# Everything printed goes to $OUT/gpu_checks_<device>.txt (default OUT: results/gpu/).
# Packages the machine's image lacks travel as wheels: `bash tests/gpu/make_wheels.sh` here, then
# the device call carries .whl and runs `bash tests/gpu/run_gpu_checks.sh`, which installs them.
set -u
if ls .whl/*.whl >/dev/null 2>&1; then
  ${PYTHON:-python3} -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
OUT=${OUT:-results/gpu}
mkdir -p "$OUT/profiles"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=$($PY -c "import torch; print(torch.cuda.get_device_name().replace(' ', '_') if torch.cuda.is_available() else 'cpu')")
LOG="$OUT/gpu_checks_${DEVICE}.txt"
stage() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }
BENCH="$PY -m bench.loop_bench --iterations 3 --repeats 2"
{
  stage "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.get_device_name(), '| GPUs:', torch.cuda.device_count())"
  git log -1 --format='commit %H %s' 2>/dev/null || true

  stage "speed table: modernn, cumulative modes, profiled"
  timeout 90 $BENCH --models modernn --modes eager cuda_graph fused_norm fused_convs bf16 \
      channels_last --profile "$OUT/profiles"
  stage "speed table: convlstm and predrnn"
  timeout 70 $BENCH --models convlstm predrnn --modes eager cuda_graph fused_norm fused_convs \
      bf16 channels_last
  stage "speed table: +compile (on top of the whole ladder), modernn"
  timeout 60 $BENCH --models modernn --modes eager compile --repeats 1 --profile "$OUT/profiles"
  stage "reduce-overhead alone, modernn (TORCH_LOGS=recompiles,cudagraphs)"
  TORCH_LOGS=recompiles,cudagraphs timeout 35 $BENCH --models modernn --modes reduce-overhead \
      --repeats 1 2>&1 | tail -40

  stage "verify"
  if $PY run_bench.py --help 2>/dev/null | grep -q "run_bench.py verify"; then
    timeout 30 $PY run_bench.py verify --device cuda
  else
    echo "skipped: this checkout's run_bench.py has no verify subcommand"
  fi

  stage "paper preset, first 20 iterations: modernn, cuda_graph=true"
  timeout 40 $PY run_bench.py --models modernn --preset paper --epochs 1 --steps 20 \
      --set cuda_graph=true --device cuda --no-progress --out /tmp/gpu-results
  $PY - <<'PYEOF'
import json, glob
for path in glob.glob("/tmp/gpu-results/*/paper/records.jsonl"):
    for line in open(path):
        r = json.loads(line)
        t = r.get("train") or {}
        print(r["model"], r["status"], r.get("error"), "| device", r["device_name"], r["precision"],
              r["device_settings"], "| iteration_s", t.get("iteration_s"), "| estimate", r.get("estimate"))
        if t.get("iteration_s"):
            print(f"paper preset (80,000 iterations) at this speed: {80000 * t['iteration_s'] / 3600:.1f} h")
PYEOF

  stage "CUDA tests"
  timeout 25 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py -k captured

  if [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    stage "torchrun, 2 ranks"
    timeout 60 torchrun --nproc_per_node=2 run_bench.py --models convlstm --preset smoke \
        --device cuda --no-progress --out /tmp/gpu-ddp
  else
    stage "torchrun, 2 ranks: skipped (one GPU on this machine)"
  fi
} 2>&1 | tee "$LOG"
