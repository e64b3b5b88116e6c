"""The nodes that run on the robot import numpy, onnxruntime and rclpy only: never torch,
pybullet, the training code nor the bag libraries (checked in a fresh interpreter, since this
test process has imported most of them already)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("torch", "rosbags", "ruamel", "pybullet", "meta_train", "sim")
"""Top-level packages no robot-side node may pull in."""

_CODE = """
import json, sys
import {modules}
forbidden = {forbidden!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in forbidden)))
"""


@pytest.mark.parametrize(
    "modules",
    [
        ("meta_control.controller_node", "meta_control.estimator_node"),
        (
            "meta_control.topics",
            "meta_control.observation",
            "meta_control.config",
            "meta_control.limits",
            "meta_control.motion",
            "meta_control.jtc",
            "meta_control.workspace",
        ),
    ],
    ids=["nodes", "plain_modules"],
)
def test_robot_side_modules_import_no_training_sim_or_bag_code(modules: tuple[str, ...]) -> None:
    code = _CODE.format(modules=", ".join(modules), forbidden=FORBIDDEN)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert imported == [], f"{modules} imported {imported}"


def test_nodes_load_pinocchio_only_for_a_workspace_guard() -> None:
    """The workspace guard's kinematics library is imported when a limits file enables the
    guard, not by importing the nodes (the simulated pusher runs without it)."""
    code = _CODE.format(
        modules="meta_control.controller_node, meta_control.workspace", forbidden=("pinocchio",)
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
