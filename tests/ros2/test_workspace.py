"""The workspace guard (no ROS): pinocchio's forward kinematics from the arms' URDFs agree with
the simulator's, and a configuration outside the box or below the table is named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ros_helpers import CONFIG

from meta_control.limits import LimitsError, load_robot_limits, resolve_urdf
from meta_control.workspace import WorkspaceGuard


def _guard(robot: str, **changes) -> WorkspaceGuard:
    lim = load_robot_limits(CONFIG / "limits" / f"{robot}.yaml")
    spec = dataclasses.replace(lim.workspace, **changes)
    return WorkspaceGuard(spec, resolve_urdf(spec.urdf, lim.path.parent), lim.joints.names)


@pytest.mark.parametrize("robot", ["panda", "pusher"])
def test_forward_kinematics_match_the_simulator(robot: str) -> None:
    """The end effector where PyBullet puts it, at random joint positions (the limits files'
    base position is the simulator's base on the nominal table)."""
    from sim.world import PushWorld

    guard = _guard(robot)
    world = PushWorld(robot)
    rng = np.random.default_rng(0)
    try:
        for _ in range(20):
            q = rng.uniform(world.joint_lower, world.joint_upper)
            for index, value in zip(world.joint_indices, q, strict=True):
                world.sim.client.resetJointState(world.robot_uid, index, value)
            np.testing.assert_allclose(
                guard.end_effector_position(q), world.ee_position(), atol=1e-6
            )
    finally:
        world.close()


def test_violations_name_the_table_or_the_box_axis() -> None:
    guard = _guard("panda")
    rest = np.array([0.0001, 0.263, 0.0, -2.8284, 0.0002, 3.0908, 0.7853])  # tip 2.5 cm up
    assert guard.violation(rest) is None
    assert guard.check(rest, rest) is None
    high_table = _guard("panda", table_height_m=0.8, min_height_above_table_m=0.0)
    assert "below the table clearance (0.800 m)" in high_table.violation(rest)
    assert "x 0.351 not in [0.400" in _guard("panda", box_min_m=(0.4, -0.45, 0.75)).check(
        rest, rest
    )
    turned = rest.copy()
    turned[0] = 1.2  # swings the tip round to (0.13, 0.33)
    why = _guard("panda", box_max_m=(0.9, 0.3, 1.15)).violation(turned)
    assert why.startswith("panda_grasptarget would leave the workspace box: x 0.127 not in")
    assert why.endswith("y 0.327 not in [-0.450, 0.300] m")


def test_a_urdf_without_the_joints_or_the_link_is_refused() -> None:
    lim = load_robot_limits(CONFIG / "limits" / "pusher.yaml")
    urdf = resolve_urdf(lim.workspace.urdf, lim.path.parent)
    with pytest.raises(LimitsError, match="has no joints"):
        WorkspaceGuard(lim.workspace, urdf, ["panda_joint1"])
    with pytest.raises(LimitsError, match="no link 'hand'"):
        WorkspaceGuard(
            dataclasses.replace(lim.workspace, end_effector_link="hand"), urdf, lim.joints.names
        )
