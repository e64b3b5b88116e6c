#!/usr/bin/env bash
# Fill .whl/ with what bench/device_check.sh installs on the lent GPU machine, whose Python
# (3.12) has torch but not gymnasium or PyBullet, and which reaches no package index. PyBullet
# has no wheel for Python 3.12 on the index, so it is built here from its source (about 10
# minutes on two cores), stripped and cut to what the envs need (6 MiB; the transfer limit
# is 64 MiB). Needs a python3.12 here (PY312=...). Then, with the tool that runs commands there:
#   run  command="bash bench/device_check.sh tests train"  carry=[".whl"]
set -euo pipefail
cd "$(dirname "$0")/.."
PY312=${PY312:-python3.12}
if ! grep -qx "/.whl/" .git/info/exclude 2>/dev/null; then
  mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
fi
mkdir -p .whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${plat[@]}" -d .whl gymnasium==1.4.0 farama-notifications==0.0.4
build=$(mktemp -d)
"$PY312" -m venv "$build/venv"
"$build/venv/bin/pip" install -q setuptools wheel
"$build/venv/bin/pip" wheel -q --no-deps --no-build-isolation --no-binary=:all: \
  -w "$build/wheels" pybullet==3.2.7
python3 bench/slim_wheel.py "$build"/wheels/pybullet-*.whl .whl \
  --drop pybullet_envs pybullet_examples pybullet_robots \
  eglRenderer.cpython-312-x86_64-linux-gnu.so --keep-only pybullet_data \
  --keep pybullet_data/franka_panda
rm -rf "$build"
ls -l .whl
