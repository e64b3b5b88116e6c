#!/usr/bin/env bash
# Reproduce the shipped models: models/pusher_policy.onnx (+ .json) and
# models/pusher_estimator.onnx (+ .json, _report.json, _report.md), each sidecar with its
# headline measured through the runtime. CPU only; see models/README.md for the budgets and the
# measured wall times. STEPS overrides the policy's training budget (the preset's: 1.2M env
# steps, stopped at 59 minutes of training if the machine is slower).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
STEPS=${STEPS:-1200000}
RUN=runs/pusher_default
.venv/bin/meta-train rdpg-her --preset pusher --total-env-steps "$STEPS" --run-dir runs \
  --run-name pusher_default --final-eval-episodes 100
.venv/bin/meta-train export "$RUN" --which final --out models/pusher_policy.onnx
.venv/bin/meta-train evaluate-model models/pusher_policy.onnx --episodes 1000 --record
# the estimator learns from the exported policy's interaction, run through the runtime
.venv/bin/meta-train estimator --preset pusher --policy models/pusher_policy.onnx \
  --out models/pusher_estimator.onnx
.venv/bin/meta-train evaluate-model models/pusher_estimator.onnx --episodes 200 \
  --episode-steps 100 --contact-k 20 --record
