#!/usr/bin/env bash
# Create .venv and install the pinned dependencies, this project and its ROS 2 package.
# Idempotent: a stamp of the lock file's hash skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat requirements.lock pyproject.toml ros2_ws/src/meta_control/setup.py \
  | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setting up .venv (first run, or dependencies changed) ..." >&2
  log=.venv/setup.log
  {
    .venv/bin/python -m pip install --quiet --upgrade pip &&
    # torch==2.13.0 is the CPU wheel on disk; the lock pins every other package.
    .venv/bin/python -m pip install --quiet -r requirements.lock &&
    .venv/bin/python -m pip install --quiet --no-deps -e . -e ros2_ws/src/meta_control
  } >"$log" 2>&1 || { cat "$log" >&2; echo "setup failed (log: $log)" >&2; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Every ROS 2 process started from this checkout stays on this machine unless told otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
