#!/usr/bin/env bash
# Reproduce the shipped models: models/pusher_policy.onnx (+ .json) and
# models/pusher_estimator.onnx (+ .json, + _report.json). CPU only; see models/README.md for the
# budget and the measured wall time. STEPS overrides the policy's training budget (the
# preset's: 1.2M env steps, stopped at 59 minutes of training if the machine is slower).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
STEPS=${STEPS:-1200000}
RUN=runs/pusher_default
.venv/bin/meta-train rdpg-her --preset pusher --total-env-steps "$STEPS" --run-dir runs \
  --run-name pusher_default --final-eval-episodes 100
.venv/bin/meta-train export "$RUN" --which final --out models/pusher_policy.onnx
.venv/bin/meta-train estimator --policy-run "$RUN" --policy-which final \
  --out models/pusher_estimator.onnx
