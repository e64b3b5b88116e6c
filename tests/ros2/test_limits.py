"""The arms' limit files and what the controller enforces from them (no ROS): the Franka's
published limits, the margin, never widening by the model, joint-name maps, file lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ros_helpers import CONFIG

from meta_control.limits import (
    LimitsError,
    enforced_limits,
    load_robot_limits,
    parse_joint_map,
    resolve_limits_path,
    resolve_urdf,
)

# The FER table of libfranka's limits (the project's reference notes).
FER = {
    "q_min": [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973],
    "q_max": [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973],
    "velocity": [2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100],
    "acceleration": [15, 7.5, 10, 12.5, 15, 20, 20],
    "jerk": [7500, 3750, 5000, 6250, 7500, 10000, 10000],
}
PANDA = [f"panda_joint{i}" for i in range(1, 8)]
FR3 = [f"fr3_joint{i}" for i in range(1, 8)]


def _urdf_limits(robot: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position and velocity limits of the simulator's model of ``robot`` (what it trains with)."""
    from sim.world import PushWorld

    world = PushWorld(robot)
    try:
        return world.joint_lower, world.joint_upper, world.joint_max_velocity
    finally:
        world.close()


def test_panda_file_states_the_published_fer_limits() -> None:
    lim = load_robot_limits(CONFIG / "limits" / "panda.yaml")
    assert list(lim.joints.names) == PANDA and lim.frame == "world" and lim.margin == 0.1
    np.testing.assert_array_equal(lim.joints.position_low, FER["q_min"])
    np.testing.assert_array_equal(lim.joints.position_high, FER["q_max"])
    for key in ("velocity", "acceleration", "jerk"):
        np.testing.assert_array_equal(getattr(lim.joints, key), FER[key])


def test_enforced_limits_never_exceed_the_arm_nor_the_model() -> None:
    """pybullet_data's panda.urdf is wider than the arm: the enforced range is the file's less
    the margin, within the model's; velocity, acceleration and jerk are the file's x 0.9."""
    urdf_low, urdf_high, _ = _urdf_limits("panda")
    assert urdf_high[1] == pytest.approx(1.8326) and urdf_high[3] == pytest.approx(0.0)
    lim = load_robot_limits(CONFIG / "limits" / "panda.yaml")
    enforced = enforced_limits(lim, PANDA, urdf_low, urdf_high)
    width = np.subtract(FER["q_max"], FER["q_min"])
    np.testing.assert_allclose(enforced.position_low, np.add(FER["q_min"], 0.05 * width))
    np.testing.assert_allclose(enforced.position_high, np.subtract(FER["q_max"], 0.05 * width))
    assert np.all(enforced.position_low >= urdf_low)
    assert np.all(enforced.position_high <= urdf_high)
    np.testing.assert_allclose(enforced.velocity, 0.9 * np.array(FER["velocity"]))
    np.testing.assert_allclose(enforced.jerk, 0.9 * np.array(FER["jerk"]))
    # A model narrower than the arm keeps its own range; margin 0 leaves the file's limits.
    mid = 0.5 * np.add(FER["q_min"], FER["q_max"])
    narrow = enforced_limits(lim, PANDA, mid - 0.3, mid + 0.3)
    np.testing.assert_array_equal(narrow.position_high, mid + 0.3)
    bare = enforced_limits(lim, PANDA, urdf_low, urdf_high, margin=0.0)
    np.testing.assert_array_equal(bare.velocity, FER["velocity"])
    with pytest.raises(LimitsError, match="do not overlap"):
        enforced_limits(lim, PANDA, np.full(7, 3.0), np.full(7, 4.0))
    with pytest.raises(LimitsError, match="margin"):
        enforced_limits(lim, PANDA, urdf_low, urdf_high, margin=1.0)


def test_pusher_file_keeps_the_simulators_urdf_limits() -> None:
    low, high, velocity = _urdf_limits("pusher")
    lim = load_robot_limits(CONFIG / "limits" / "pusher.yaml")
    assert lim.margin == 0.0 and lim.workspace is not None and not lim.workspace.enabled
    np.testing.assert_array_equal(lim.joints.position_low, low)
    np.testing.assert_array_equal(lim.joints.position_high, high)
    np.testing.assert_array_equal(lim.joints.velocity, velocity)


def test_fr3_file_maps_from_the_panda_model_by_joint_names() -> None:
    lim = load_robot_limits(resolve_limits_path("fr3", "panda"))
    assert list(lim.joints.names) == FR3 and lim.frame == "fr3_link0"
    robot = parse_joint_map(",".join(FR3), PANDA)
    enforced = enforced_limits(lim, robot, FER["q_min"], FER["q_max"])
    assert enforced.names == tuple(FR3)
    # FR3 joint 6 starts at 0.5445 rad (the FER's at -0.0175): the stricter bound holds.
    assert enforced.position_low[5] > 0.5445
    with pytest.raises(LimitsError, match="joint_names"):
        enforced_limits(lim, PANDA, FER["q_min"], FER["q_max"])  # the model's names: no entry


def test_joint_name_maps() -> None:
    model = ["a", "b", "c"]
    assert parse_joint_map("", model) == model
    assert parse_joint_map("x, y ,z", model) == ["x", "y", "z"]
    assert parse_joint_map("c:z,a:x,b:y", model) == ["x", "y", "z"]
    for bad, why in (
        ("x,y", "3 joints"),
        ("a:x,b:y", "missing"),
        ("a:x,b:y,c:z,d:w", "unknown"),
        ("x,x,y", "twice"),
        ("a:x,y,z", "mixes"),
    ):
        with pytest.raises(LimitsError, match=why):
            parse_joint_map(bad, model)


def test_limits_files_are_found_by_robot_name_or_path(tmp_path: Path) -> None:
    assert resolve_limits_path("", "pusher") == CONFIG / "limits" / "pusher.yaml"
    assert resolve_limits_path("fr3", "pusher") == CONFIG / "limits" / "fr3.yaml"
    own = tmp_path / "cell.yaml"
    own.write_text((CONFIG / "limits" / "pusher.yaml").read_text())
    assert resolve_limits_path(str(own), "panda") == own
    with pytest.raises(LimitsError, match="no limits file"):
        resolve_limits_path("", "ur5")
    with pytest.raises(LimitsError, match="does not exist"):
        resolve_limits_path(str(tmp_path / "none.yaml"), "panda")


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda t: t.replace("velocity: 4.0", "velocity: -4.0", 1), "velocity limits must be > 0"),
        (lambda t: t.replace("jerk: 10000.0}", "}", 1), "exactly position"),
        (lambda t: t.replace("[-2.8, 2.8]", "[2.8, -2.8]", 1), "empty position range"),
        (lambda t: t.replace("margin: 0.0", "margin: 1.5"), "margin"),
        (lambda t: t.replace("  end_effector_link: tip", "  link: tip"), "unknown workspace"),
        (lambda t: t + "  :\n", "cannot read"),
    ],
)
def test_bad_limits_files_are_refused_with_the_reason(tmp_path: Path, edit, why: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(edit((CONFIG / "limits" / "pusher.yaml").read_text()))
    with pytest.raises(LimitsError, match=why):
        load_robot_limits(path)


def test_urdf_references_resolve(tmp_path: Path) -> None:
    pusher = resolve_urdf("package://meta_control/urdf/planar_pusher.urdf", tmp_path)
    assert pusher.name == "planar_pusher.urdf" and pusher.is_file()
    panda = resolve_urdf("pybullet_data://franka_panda/panda.urdf", tmp_path)
    assert panda.is_file()
    (tmp_path / "arm.urdf").write_text("<robot/>")
    assert resolve_urdf("arm.urdf", tmp_path) == tmp_path / "arm.urdf"
    with pytest.raises(LimitsError, match="does not exist"):
        resolve_urdf("missing.urdf", tmp_path)
    with pytest.raises(LimitsError, match="package://meta_control"):
        resolve_urdf("package://franka_description/robots/fr3.urdf", tmp_path)
