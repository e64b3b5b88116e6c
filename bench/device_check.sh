#!/usr/bin/env bash
# GPU checks, run on a lent accelerator machine (see docs/benchmarks.md). Stages, in the order
# given (default: tests updates):
#   tests    the CUDA tests (train, resume and export on CUDA)
#   updates  the learner's update rate on CUDA vs that machine's CPU (bench/bench_update.py)
#   train    the pusher preset trained end to end on CUDA, scaled by flags alone, for
#            TRAIN_WALL_S seconds of training (default 380); the run (config, progress, best
#            and final policies, its final evaluation) comes back as $OUT/GPU1.tgz
#   panda    the same for the Panda preset, with the flags its preset names, for
#            PANDA_WALL_S seconds (default 150): $OUT/PGPU1.tgz
#   eval     EVAL_EPISODES-episode (default 200) evaluations of the runs bench/stage_runs.py
#            staged in runs/_stage (carry it), one per line of its runs/_stage/jobs.txt
#            ('RUN_DIR WHICH DYNAMICS RESET_SEED'), one process per core on the machine's
#            CPUs; JSON and logs come back as $OUT/eval.tgz
#            (eval/RUN_WHICH_DYNAMICS_sSEED.json; bench/pool_evals.py pools the chunks)
# That machine's Python has torch but not gymnasium or PyBullet: their wheels for its Python
# travel in .whl/, which bench/device_wheels.sh fills (PyBullet built here for that Python).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD:$PWD/ros2_ws/src/meta_control PYTHONUNBUFFERED=1
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, pybullet, gymnasium; print('torch', torch.__version__,
torch.cuda.get_device_name(0), 'gymnasium', gymnasium.__version__)" | tee -a "$OUT/gpu.txt" \
  || exit 1
nproc | sed 's/^/cpus /' | tee -a "$OUT/gpu.txt"
# train_run NAME WALL_S LOG ARGS...: meta-train rdpg-her ARGS on CUDA for WALL_S seconds of
# training; the run without its checkpoints comes back as $OUT/NAME.tgz
train_run() {
  local name=$1 wall=$2 log=$3 status=0
  shift 3
  timeout $((wall + 120)) python3 -m meta_train.cli rdpg-her --device cuda "$@" \
    --max-wall-s "$wall" --run-dir /tmp/runs --run-name "$name" --no-progress 2>&1 \
    | tee "$OUT/$log" || status=1
  tar czf "$OUT/$name.tgz" -C /tmp/runs --exclude checkpoints "$name" || status=1
  return $status
}
[ $# -gt 0 ] || set -- tests updates
rc=0
for stage in "$@"; do
  case $stage in
    tests)
      timeout 300 python3 -m pytest -q -p no:cacheprovider tests/meta_train/test_cuda.py \
        "tests/meta_train/test_networks.py" -k "cuda" 2>&1 | tee "$OUT/cuda_tests.log" || rc=1
      ;;
    updates)
      timeout 200 python3 bench/bench_update.py --device cpu cuda --updates 10 --threads 16 \
        2>&1 | tee "$OUT/bench_update.md" || rc=1
      ;;
    train)
      train_run GPU1 "${TRAIN_WALL_S:-380}" train_gpu.log --preset pusher --n-envs 16 \
        --vector async --batch-episodes 256 --hidden 128 --updates-per-iteration 32 \
        --total-env-steps 5000000 || rc=1
      ;;
    panda)
      train_run PGPU1 "${PANDA_WALL_S:-150}" train_panda_gpu.log --preset panda --n-envs 16 \
        --vector async --batch-episodes 128 --hidden 128 --total-env-steps 20000000 \
        --final-eval-episodes 20 || rc=1
      ;;
    eval)
      [ -f runs/_stage/jobs.txt ] || {
        echo "eval: no runs/_stage/jobs.txt (run bench/stage_runs.py first)" >&2; exit 2; }
      mkdir -p "$OUT/eval"
      OMP_NUM_THREADS=1 timeout "${EVAL_TIMEOUT_S:-420}" xargs -P "$(nproc)" -L 1 \
        -a runs/_stage/jobs.txt \
        bash -c 'seed=$3; n=$(basename "$0")_$1_$2_s$seed
          python3 -m meta_train.cli evaluate "$0" --which "$1" --dynamics "$2" \
          --seed "$seed" --episodes "${EVAL_EPISODES:-200}" \
          --json "$OUT/eval/$n.json" > "$OUT/eval/$n.log" 2>&1' || rc=1
      tail -n 1 "$OUT"/eval/*.log
      tar czf "$OUT/eval.tgz" -C "$OUT" eval && rm -rf "$OUT/eval" || rc=1
      ;;
    *) echo "unknown stage $stage (tests, updates, train, panda, eval)" >&2; exit 2 ;;
  esac
done
exit $rc
