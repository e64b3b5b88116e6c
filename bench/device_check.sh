#!/usr/bin/env bash
# GPU checks, run on a lent accelerator machine (see docs/benchmarks.md): the CUDA tests and
# the learner's update rate on CUDA vs that machine's CPU. Needs gymnasium wheels in .whl/.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD:$PWD/ros2_ws/src/meta_control PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" \
  | tee -a "$OUT/gpu.txt"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/meta_train/test_cuda.py \
  "tests/meta_train/test_networks.py" -k "cuda" 2>&1 | tee "$OUT/cuda_tests.log"
timeout 200 python3 bench/bench_update.py --device cpu cuda --updates 10 --threads 16 \
  2>&1 | tee "$OUT/bench_update.md"
