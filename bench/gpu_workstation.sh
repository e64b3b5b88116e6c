#!/usr/bin/env bash
# The GPU checks and runs, on your own CUDA workstation: run from the repository root.
#
#   bash bench/gpu_workstation.sh [STAGE...]        (default: tests updates)
#
# It sets the project up as the README does (scripts/setup.sh: .venv with the pinned torch,
# which pip takes as its CUDA build on Linux x86_64) and writes everything to $OUT
# (default: gpu_results/). Stages, in the order given:
#   tests    the CUDA tests: training, resume and export on CUDA
#   updates  the learner's gradient updates per second, CUDA against this machine's CPU
#            (bench/bench_update.py)
#   train    the pusher preset on CUDA scaled by flags alone, for TRAIN_WALL_S seconds of
#            training (default 380); the run goes to $OUT/runs/GPU1
#   panda    the same for the Panda preset, PANDA_WALL_S seconds (default 150): $OUT/runs/PGPU1
#   eval     evaluate the runs named in EVAL_RUNS (space-separated run folders) on
#            EVAL_CHUNKS chunks of EVAL_EPISODES episodes (defaults 5 and 200) per dynamics
#            setting, one process per core; JSON in $OUT/eval/, pooled with Wilson intervals
#            by bench/analysis/pool_evals.py
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export OUT=${OUT:-gpu_results} PYTHONUNBUFFERED=1
mkdir -p "$OUT"
PY=.venv/bin/python
nvidia-smi -L | tee "$OUT/gpu.txt" || { echo "no NVIDIA GPU visible (nvidia-smi)" >&2; exit 2; }
$PY -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device';
print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt" \
  || exit 2
nproc | sed 's/^/cpus /' | tee -a "$OUT/gpu.txt"

# train_run NAME WALL_S ARGS...: meta-train rdpg-her ARGS on CUDA for WALL_S s of training
train_run() {
  local name=$1 wall=$2
  shift 2
  timeout $((wall + 300)) .venv/bin/meta-train rdpg-her --device cuda "$@" \
    --max-wall-s "$wall" --run-dir "$OUT/runs" --run-name "$name" --no-progress 2>&1 \
    | tee "$OUT/$name.log"
}

[ $# -gt 0 ] || set -- tests updates
rc=0
for stage in "$@"; do
  case $stage in
    tests)
      $PY -m pytest -q -p no:cacheprovider tests/meta_train/rdpg/test_cuda.py \
        tests/meta_train/common/test_networks.py -k cuda 2>&1 | tee "$OUT/cuda_tests.log" \
        || rc=1
      ;;
    updates)
      $PY bench/bench_update.py --device cpu cuda --updates 10 --threads "$(nproc)" 2>&1 \
        | tee "$OUT/bench_update.md" || rc=1
      ;;
    train)
      train_run GPU1 "${TRAIN_WALL_S:-380}" --preset pusher --n-envs 16 --vector async \
        --batch-episodes 256 --hidden 128 --updates-per-iteration 32 \
        --total-env-steps 5000000 || rc=1
      ;;
    panda)
      train_run PGPU1 "${PANDA_WALL_S:-150}" --preset panda --n-envs 16 --collector inline \
        --vector async \
        --batch-episodes 128 --hidden 128 --total-env-steps 20000000 \
        --final-eval-episodes 20 || rc=1
      ;;
    eval)
      [ -n "${EVAL_RUNS:-}" ] || { echo "eval: set EVAL_RUNS to the run folders" >&2; exit 2; }
      mkdir -p "$OUT/eval"
      episodes=${EVAL_EPISODES:-200}
      for run in $EVAL_RUNS; do
        for dyn in train heldout nominal; do
          for ((k = 0; k < ${EVAL_CHUNKS:-5}; k++)); do
            echo "$run final $dyn $((10000 + k * episodes))"
          done
        done
      done > "$OUT/eval/jobs.txt"
      OMP_NUM_THREADS=1 xargs -P "$(nproc)" -L 1 -a "$OUT/eval/jobs.txt" \
        bash -c 'n=$(basename "$0")_$1_$2_s$3
          .venv/bin/meta-train evaluate "$0" --which "$1" --dynamics "$2" --seed "$3" \
          --episodes '"$episodes"' --json "$OUT/eval/$n.json" > "$OUT/eval/$n.log" 2>&1' \
        || rc=1
      $PY bench/analysis/pool_evals.py "$OUT"/eval/*.json | tee "$OUT/eval.md" || rc=1
      ;;
    *) echo "unknown stage $stage (tests, updates, train, panda, eval)" >&2; exit 2 ;;
  esac
done
exit $rc
