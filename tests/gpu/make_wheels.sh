#!/usr/bin/env bash
# The packages the harness imports that the lent GPU machine's image lacks (fvcore and the
# pure-Python packages it needs; that machine reaches no package registry), built here as wheels
# under .whl/ (ignored by git) for the device call to carry; run_gpu_checks.sh installs them.
set -eu
PY=${PYTHON:-python3}
rm -rf .whl
$PY -m pip wheel -q --no-deps -w .whl fvcore==0.1.5.post20221221 iopath==0.1.10 yacs==0.1.8 \
    termcolor==3.3.0
ls .whl
