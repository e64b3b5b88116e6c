"""What a first run on a real arm relies on, with a real ``controller_node`` process: a dry run
publishes nothing on the command topics, the joint-name map names what the arm reads and
executes, and poses in another frame hold with a diagnostic (the workspace guard:
``test_workspace_guard.py``).

The test process plays the arm (``test_controller_faults.Arm``); the pusher test models stand in
for the robot's, with limits files of their own.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ros_helpers import CONFIG, export_models, nodes, ros_env, start_node
from test_controller_limits import LimitsArm

pytestmark = pytest.mark.ros

ROBOT_JOINTS = ["shoulder", "elbow", "wrist"]
TRAJECTORY = "/joint_trajectory_controller/joint_trajectory"
DRY_TRAJECTORY = "/meta_controller/dry_run/joint_trajectory"
COMMANDS = "/forward_position_controller/commands"
DRY_COMMANDS = "/meta_controller/dry_run/commands"


def limits_file(root: Path, names: list[str], workspace: str = "") -> Path:
    """The pusher's limits under other joint names, optionally with a workspace section."""
    text = (CONFIG / "limits" / "pusher.yaml").read_text()
    text = text[: text.index("workspace:")] if workspace else text
    for old, new in zip(["joint1", "joint2", "joint3"], names, strict=True):
        text = text.replace(f"  {old}:", f"  {new}:")
    path = root / "limits.yaml"
    path.write_text(text + workspace)
    return path


class DeployArm(LimitsArm):
    """Also counts what arrives on the command and dry-run topics."""

    def __init__(self) -> None:
        super().__init__()
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        self.received: dict[str, list] = {t: [] for t in (TRAJECTORY, DRY_TRAJECTORY)}
        self.received[DRY_COMMANDS] = []
        self.node.create_subscription(
            JointTrajectory, DRY_TRAJECTORY, self.received[DRY_TRAJECTORY].append, 100
        )
        self.node.create_subscription(
            Float64MultiArray, DRY_COMMANDS, self.received[DRY_COMMANDS].append, 100
        )
        self.received[TRAJECTORY] = self.trajectories  # LimitsArm subscribes to it already

    def diagnostics_after(self, seconds: float) -> dict[str, str]:
        self.spin(seconds)
        return self.next_diagnostics()


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory):
    """A controller in trajectory mode, dry run, with the robot's joint names mapped, and the
    arm; ready once the policy has run."""
    import rclpy

    root = tmp_path_factory.mktemp("dry_run")
    policy, _ = export_models(root)
    limits = limits_file(root, ROBOT_JOINTS)
    log = root / "controller.log"
    proc = start_node(
        "controller_node",
        {
            "policy_path": policy,
            "limits": limits,
            "command_mode": "trajectory",
            "dry_run": True,
            "joint_names": ",".join(ROBOT_JOINTS),
            "trigger": "state",
            "control_rate_hz": 25.0,
            "stale_periods": 10.0,
            "diagnostics_period_s": 0.2,
            "autostart": True,
        },
        params_file=CONFIG / "controller.yaml",
        env=ros_env(offset=53),
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
                arm.send_state(names=ROBOT_JOINTS)
                arm.spin(0.15)
                assert time.monotonic() < deadline, log.read_text()
            yield arm, log
            arm.node.destroy_node()
        finally:
            rclpy.try_shutdown()


def test_dry_run_publishes_only_on_the_dry_run_topic(dry_run) -> None:
    arm, log = dry_run
    n_dry = len(arm.received[DRY_TRAJECTORY])
    for _ in range(10):
        arm.send_state(names=ROBOT_JOINTS)
        arm.spin(0.05)
    assert arm.spin_until(lambda: len(arm.received[DRY_TRAJECTORY]) >= n_dry + 8, 3.0)
    arm.spin(0.2)
    assert arm.received[TRAJECTORY] == [] and arm.commands == [], log.read_text()
    # Nothing even advertises the command topics.
    for topic in (TRAJECTORY, COMMANDS):
        assert arm.node.count_publishers(topic) == 0, topic
    diag = arm.next_diagnostics()
    assert diag["dry_run"] == "True" and diag["command_topic"] == DRY_TRAJECTORY
    assert diag["message"].startswith("DRY RUN")


def test_trajectories_name_the_robots_joints_and_model_names_are_refused(dry_run) -> None:
    arm, _ = dry_run
    msg = arm.received[DRY_TRAJECTORY][-1]
    assert list(msg.joint_names) == ROBOT_JOINTS
    n_act = len(arm.actions)
    for _ in range(3):
        arm.send_state()  # the model's names, joint1..3: not what this robot publishes
        arm.spin(0.05)
    diag = arm.diagnostics_after(0.1)
    assert len(arm.actions) == n_act
    assert diag["safety_state"] == "joint_mismatch"
    assert "lacks joints ['shoulder', 'elbow', 'wrist']" in diag["hold_detail"]
    arm.send_state(names=ROBOT_JOINTS)
    assert arm.spin_until(lambda: len(arm.actions) > n_act, 2.0)  # recovers


@pytest.mark.parametrize("which", ["puck", "goal"])
def test_a_pose_in_another_frame_holds_with_a_diagnostic(dry_run, which: str) -> None:
    arm, _ = dry_run
    n_act = len(arm.actions)
    if which == "goal":
        arm.send_goal(frame="camera")
        arm.spin(0.1)
    for _ in range(4):
        arm.send_state(names=ROBOT_JOINTS, frame="camera" if which == "puck" else "world")
        arm.spin(0.05)
    diag = arm.diagnostics_after(0.1)
    assert len(arm.actions) == n_act, "the policy ran on a pose in the wrong frame"
    assert diag["safety_state"] == "frame_mismatch"
    assert f"{which} pose frame 'camera' is not 'world'" in diag["message"]
    arm.send_goal()
    arm.spin(0.1)
    arm.send_state(names=ROBOT_JOINTS)
    assert arm.spin_until(lambda: len(arm.actions) > n_act, 2.0)  # recovers
