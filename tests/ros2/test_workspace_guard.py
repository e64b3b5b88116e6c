"""The workspace guard in a real ``controller_node`` process: a command that would take the end
effector out of its box holds, with the reason in ``/diagnostics``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import CONFIG, export_models, nodes, ros_env, start_node
from test_controller_deploy import DRY_COMMANDS, DeployArm, limits_file
from test_controller_faults import Q0

from meta_control.limits import load_robot_limits, resolve_urdf
from meta_control.workspace import WorkspaceGuard

pytestmark = pytest.mark.ros


@pytest.mark.slow
def test_the_workspace_guard_holds_at_the_box(tmp_path: Path) -> None:
    """A saturated policy swings the pusher's tip toward -y; the box ends at y = -0.05 m. The
    arm follows its commands until the guard holds: no command leaves the box, the hold is
    named in ``/diagnostics``, and the forward commands go to the dry-run topic."""
    import rclpy

    workspace = """workspace:
  enabled: true
  urdf: package://meta_control/urdf/planar_pusher.urdf
  end_effector_link: tip
  base_position_m: [-0.05, 0.0, 0.75]
  box_min_m: [-0.5, -0.05, 0.75]
  box_max_m: [0.9, 0.5, 0.95]
  table_height_m: 0.75
"""
    policy, _ = export_models(tmp_path, action_bias=10.0)
    limits = limits_file(tmp_path, ["joint1", "joint2", "joint3"], workspace)
    spec = load_robot_limits(limits).workspace
    guard = WorkspaceGuard(spec, resolve_urdf(spec.urdf, tmp_path), ["joint1", "joint2", "joint3"])
    assert guard.violation(Q0) is None and guard.violation(Q0 + 0.3) is not None
    log = tmp_path / "controller.log"
    proc = start_node(
        "controller_node",
        {
            "policy_path": policy,
            "limits": limits,
            "dry_run": True,
            "trigger": "state",
            "control_rate_hz": 20.0,
            "range_margin": 10.0,
            "stale_periods": 10.0,
            "diagnostics_period_s": 0.2,
            "autostart": True,
        },
        params_file=CONFIG / "controller.yaml",
        env=ros_env(offset=54),
        log=log,
    )
    with nodes(proc):
        rclpy.init()
        try:
            arm = DeployArm()
            assert arm.spin_until(lambda: arm.js.get_subscription_count() > 0, 30), log.read_text()
            deadline = time.monotonic() + 20
            while not arm.actions:
                arm.send_goal()
                arm.spin(0.1)
                arm.send_state()
                arm.spin(0.15)
                assert time.monotonic() < deadline, log.read_text()
            q, commands = Q0.copy(), []
            for _ in range(20):
                n = len(arm.received[DRY_COMMANDS])
                arm.send_state(q=q)
                assert arm.spin_until(lambda n=n: len(arm.received[DRY_COMMANDS]) > n, 2.0)
                q = np.array(arm.received[DRY_COMMANDS][-1].data)
                commands.append(q)
            diag = arm.diagnostics_after(0.1)
            arm.node.destroy_node()
        finally:
            rclpy.try_shutdown()
    assert arm.commands == []
    tips = np.array([guard.end_effector_position(c) for c in commands])
    assert np.all(tips[:, 1] >= -0.05), tips
    assert tips[:, 1].min() < -0.03  # it did go up to the box
    np.testing.assert_array_equal(commands[-1], commands[-2])  # held at rest
    assert diag["safety_state"] == "workspace" and int(diag["holds_workspace"]) > 0
    assert "tip would leave the workspace box: y " in diag["hold_detail"]
    assert diag["workspace_guard"] == "on"
