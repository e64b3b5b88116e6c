"""The arm's limits on the commands real ``controller_node`` processes publish, in both command
modes.

The policy is saturated (its output layer has zero weights and a large bias), so every action
is ``+max_offset`` (0.05 rad) on every joint whatever the input: a target 0.05 rad ahead of the
arm at every tick, which breaks each limit of the test's limits file (margin 0): 1 rad/s per
tick asked against 0.4 rad/s, a jump from rest against 8 rad/s^2, and joint 3's upper position
limit, 1.6 rad, a few ticks away. The test process plays an arm that follows its commands
exactly.

* forward (``trigger: state``, one command per state): the commands' differences at the
  policy rate stay within velocity, acceleration and jerk, position stays within its range, the
  limiting is counted in ``/diagnostics``; an e-stop brakes within the limits;
* trajectory (``trigger: timer``): the ``JointTrajectory`` messages, interpolated at 1 kHz as
  ros2_control's joint_trajectory_controller does (:mod:`meta_control.jtc`, picked up 1 ms
  after their stamp), give velocity, acceleration and jerk within the limits, and each ends at
  rest.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import CONFIG, export_models, nodes, ros_env, start_node
from test_controller_faults import Arm

from meta_control.jtc import TrajectoryMessage, execute, sample, stream_extremes

pytestmark = pytest.mark.ros

RATE_HZ = 20.0
PERIOD_S = 1.0 / RATE_HZ
JOINTS = ["joint1", "joint2", "joint3"]
VELOCITY = 0.4
ACCELERATION = 8.0
JERK = 800.0
UPPER = np.array([2.8, 2.8, 1.6])
Q_START = np.array([-1.57, 1.2, 1.2])
LIMITS_YAML = """
robot: test_pusher
margin: 0.0
frame: world
joints:
""" + "".join(
    f"  {name}: {{position: [-2.8, {hi}], velocity: {VELOCITY}, acceleration: {ACCELERATION}, "
    f"jerk: {JERK}}}\n"
    for name, hi in zip(JOINTS, UPPER, strict=True)
)


class LimitsArm(Arm):
    """The fault tests' arm, also collecting ``/diagnostics`` and joint trajectories."""

    def __init__(self) -> None:
        super().__init__()
        from diagnostic_msgs.msg import DiagnosticArray
        from trajectory_msgs.msg import JointTrajectory

        self.diagnostics: list[dict[str, str]] = []
        self.trajectories: list[tuple[float, object]] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.node.create_subscription(
            JointTrajectory,
            "/joint_trajectory_controller/joint_trajectory",
            lambda m: self.trajectories.append((time.time(), m)),
            100,
        )

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("meta_controller"):
                self.diagnostics.append(
                    {"message": status.message, **{kv.key: kv.value for kv in status.values}}
                )

    def next_diagnostics(self) -> dict[str, str]:
        n = len(self.diagnostics)
        assert self.spin_until(lambda: len(self.diagnostics) > n, 3.0), "no /diagnostics"
        return self.diagnostics[-1]


def trajectory_message(msg, origin_sec: int = 0) -> TrajectoryMessage:
    """A ``trajectory_msgs/JointTrajectory`` as the trajectory-controller model takes it, its
    stamp counted from ``origin_sec`` (a float64 Unix time resolves only 0.24 us)."""

    def rows(field: str) -> np.ndarray:
        return np.array([list(getattr(p, field)) for p in msg.points])

    times = np.array(
        [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points]
    )
    stamp = (msg.header.stamp.sec - origin_sec) + 1e-9 * msg.header.stamp.nanosec
    return TrajectoryMessage(
        stamp, times, rows("positions"), rows("velocities"), rows("accelerations")
    )


@pytest.fixture(scope="module")
def saturated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A saturated policy and the test's limits file."""
    root = tmp_path_factory.mktemp("limits")
    policy, _ = export_models(root, action_bias=10.0)
    limits = root / "limits.yaml"
    limits.write_text(LIMITS_YAML)
    return policy, limits


def _controller(saturated, tmp_path: Path, offset: int, **params):
    policy, limits = saturated
    env = ros_env(offset=offset)
    log = tmp_path / "controller.log"
    proc = start_node(
        "controller_node",
        {
            "policy_path": policy,
            "limits": limits,
            "control_rate_hz": RATE_HZ,
            "range_margin": 10.0,  # states at the joint limits are outside the rollouts' range
            "stale_periods": 10.0,  # no watchdog hold between two exchanges on a busy machine
            "diagnostics_period_s": 0.2,
            "autostart": True,
            **params,
        },
        params_file=CONFIG / "controller.yaml",
        env=env,
        log=log,
    )
    return proc, log


def _start(arm: LimitsArm, log: Path) -> None:
    assert arm.spin_until(lambda: arm.js.get_subscription_count() > 0, 30), log.read_text()
    deadline = time.monotonic() + 20
    while not arm.actions:  # until discovery settles both ways and the policy runs
        arm.send_goal()
        arm.spin(0.1)
        arm.send_state(q=Q_START)
        arm.spin(0.15)
        assert time.monotonic() < deadline, log.read_text()


@pytest.mark.slow
def test_forward_commands_are_limited_at_the_policy_rate(saturated, tmp_path: Path) -> None:
    import rclpy

    proc, log = _controller(saturated, tmp_path, offset=47, trigger="state")
    with nodes(proc):
        rclpy.init()
        try:
            arm = LimitsArm()
            _start(arm, log)
            before = arm.next_diagnostics()
            arm.send_goal()
            arm.spin(0.2)
            # The arm follows: each state is the last command. 40 ticks: 2 s of pushing.
            q, commands, ran_ticks = Q_START.copy(), [], 0
            for _ in range(40):
                cmd, ran = arm.exchange(q=q)
                ran_ticks += ran
                commands.append(cmd)
                q = cmd
            pushed = len(commands)
            arm.e_stop.publish(arm.Bool(data=True))
            arm.spin(0.1)
            for _ in range(8):
                cmd, ran = arm.exchange(q=q)
                assert not ran
                commands.append(cmd)
                q = cmd
            after = arm.next_diagnostics()
            arm.node.destroy_node()
        finally:
            rclpy.try_shutdown()
    assert ran_ticks >= 35, log.read_text()  # a state that overtook its puck pose is held
    cmds = np.array(commands)
    assert np.all(cmds <= UPPER + 1e-12)
    np.testing.assert_allclose(cmds[pushed - 1, 2], UPPER[2])  # came to rest at joint 3's limit
    v = np.abs(np.diff(cmds, axis=0)) / PERIOD_S
    a = np.abs(np.diff(cmds, 2, axis=0)) / PERIOD_S**2
    assert v.max() <= VELOCITY + 1e-9 and v.max() > 0.99 * VELOCITY
    assert a.max() <= ACCELERATION + 1e-9 and a.max() > 0.99 * ACCELERATION
    assert (np.abs(np.diff(cmds, 3, axis=0)) / PERIOD_S**3).max() <= JERK
    np.testing.assert_array_equal(cmds[-1], cmds[-2])  # the e-stop braked to rest
    for key in ("velocity_limited_ticks", "acceleration_limited_ticks", "position_limited_ticks"):
        assert int(after[key]) > int(before[key]), (key, before, after)
    assert int(after["rate_limited_ticks"]) - int(before["rate_limited_ticks"]) >= 30


@pytest.mark.slow
def test_trajectories_interpolated_at_1khz_stay_inside_the_limits(saturated, tmp_path) -> None:
    import rclpy

    proc, log = _controller(
        saturated, tmp_path, offset=48, trigger="timer", command_mode="trajectory"
    )
    with nodes(proc):
        rclpy.init()
        try:
            arm = LimitsArm()
            _start(arm, log)
            arm.send_goal()
            # The arm follows the last trajectory; states at 50 Hz for 2.5 s.
            n0 = len(arm.trajectories)
            q = Q_START.copy()
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                if len(arm.trajectories) > n0:
                    traj = trajectory_message(arm.trajectories[-1][1])
                    q = sample(traj, traj.stamp_s, 0.0, (q, None, None), np.array([time.time()]))[
                        0
                    ][0]
                arm.send_state(q=q)
                arm.spin(0.02)
            d = arm.next_diagnostics()
            received = arm.trajectories[n0:]
            arm.node.destroy_node()
        finally:
            rclpy.try_shutdown()
    assert len(received) >= 30, log.read_text()
    assert all(list(m.joint_names) == JOINTS for _, m in received)
    origin = received[0][1].header.stamp.sec
    messages = [trajectory_message(m, origin) for _, m in received]
    for msg in messages:
        assert not msg.velocities[-1].any() and not msg.accelerations[-1].any()  # ends at rest
    # Picked up 1 ms after its stamp (the model's own robustness to later pick-ups and to
    # jitter is in test_motion.py).
    stream = [(m.stamp_s + 0.001, m) for m in messages]
    _, positions = execute(stream, messages[0].positions[0], stream[0][0], stream[-1][0] + 1.0)
    extremes = stream_extremes(positions, 0.001)
    assert np.all(positions <= UPPER + 1e-9)
    assert extremes["velocity"].max() <= VELOCITY * (1 + 1e-6)
    assert extremes["velocity"].max() > 0.99 * VELOCITY
    assert extremes["acceleration"].max() <= ACCELERATION * (1 + 1e-6)
    assert extremes["jerk"].max() <= JERK * (1 + 1e-6)
    assert int(d["velocity_limited_ticks"]) > 0 and int(d["acceleration_limited_ticks"]) > 0
    assert d["command_mode"] == "trajectory" and d["dry_run"] == "False"
