#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run lint plus the whole test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
