#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the closed-loop ROS 2 demo on the shipped model:
# PyBullet arm, policy controller and dynamics estimator as separate processes over DDS.
# Extra arguments go to meta-demo (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exec .venv/bin/meta-demo "$@"
