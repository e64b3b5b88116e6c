#!/usr/bin/env bash
# Reproduce the shipped models, each sidecar with its headline measured through the runtime:
#   bash scripts/make_default_models.sh [pusher|panda|all]      (default: all)
# pusher: models/pusher_policy.onnx and models/pusher_estimator.onnx (+ .json, _report.*);
#   STEPS overrides the policy's training budget (the preset's: 1.2M env steps, stopped at 59
#   minutes of training if the machine is slower).
# panda: models/panda_policy.onnx and models/panda_estimator.onnx (+ .json, _report.*); the
#   policy trains with the panda preset (1.1M env steps, about 2.6 hours of two cores),
#   resumable: rerun the script after a stop and it goes on from the run's last checkpoint.
#   Its headline is measured through the controller's motion limiter with the Panda's limits
#   (as it runs on the arm).
# CPU only; see models/README.md for the budgets and the measured wall times.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
case "$WHAT" in pusher|panda|all) ;; *) echo "usage: $0 [pusher|panda|all]" >&2; exit 2;; esac
source scripts/setup.sh
MT=.venv/bin/meta-train

if [[ "$WHAT" != panda ]]; then
  STEPS=${STEPS:-1200000}
  RUN=runs/pusher_default
  $MT rdpg-her --preset pusher --total-env-steps "$STEPS" --run-dir runs \
    --run-name pusher_default --final-eval-episodes 100
  $MT export "$RUN" --which final --out models/pusher_policy.onnx
  $MT evaluate-model models/pusher_policy.onnx --episodes 1000 --record
  # the estimator learns from the exported policy's interaction, run through the runtime
  $MT estimator --preset pusher --policy models/pusher_policy.onnx \
    --out models/pusher_estimator.onnx
  $MT evaluate-model models/pusher_estimator.onnx --episodes 200 \
    --episode-steps 100 --contact-k 20 --record
fi

if [[ "$WHAT" != pusher ]]; then
  RUN=runs/panda_default
  RESUME=()
  if compgen -G "$RUN/checkpoints/iter_*" > /dev/null; then RESUME=(--resume); fi
  $MT rdpg-her --preset panda --run-dir runs --run-name panda_default \
    --final-eval-episodes 0 "${RESUME[@]}"
  $MT export "$RUN" --which final --out models/panda_policy.onnx
  $MT evaluate-model models/panda_policy.onnx --episodes 1000 --limits panda --record
  $MT estimator --preset panda --policy models/panda_policy.onnx \
    --out models/panda_estimator.onnx
  $MT evaluate-model models/panda_estimator.onnx --episodes 200 \
    --episode-steps 100 --contact-k 20 --limits panda --record
fi
