"""The controller's joint-limit clamp and rate limit, on the commands a real ``controller_node``
process publishes.

The policy is saturated (its output layer has zero weights and a large bias), so every action
is ``+max_offset`` (0.05 rad) on every joint whatever the input. The test process plays the arm
(``test_controller_faults.Arm``): a state near the upper joint limits pushes ``q + action``
past them, and a state 0.3 rad below asks for a jump the rate limit must spread over several
ticks. ``trigger: state`` gives one command per state, so each command answers a known state.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from ros_helpers import CONFIG, export_models, nodes, ros_env, start_node
from test_controller_faults import Q0, Arm

pytestmark = pytest.mark.ros

RATE_HZ = 20.0
MAX_JOINT_VELOCITY_RAD_S = 0.25
MAX_STEP_RAD = MAX_JOINT_VELOCITY_RAD_S / RATE_HZ  # 0.0125 rad between two commands
LIMIT_RAD = 2.8  # the pusher's joint limits are +-2.8 rad
ACTION_RAD = 0.05  # the pusher's max_offset: what the saturated policy always commands
NEAR_LIMIT = np.full(3, LIMIT_RAD - 0.02)  # q + action = 2.83 > 2.8
BELOW = NEAR_LIMIT - 0.3  # target 2.53: 0.27 rad below the last command, 21 ticks away
RAMP_TICKS = 8


class DiagnosedArm(Arm):
    """The fault tests' arm, also collecting the controller's ``/diagnostics`` values."""

    def __init__(self) -> None:
        super().__init__()
        from diagnostic_msgs.msg import DiagnosticArray

        self.diagnostics: list[dict[str, str]] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("meta_controller"):
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def next_diagnostics(self, not_before: float) -> dict[str, str]:
        """The first diagnostics published after ``not_before`` (monotonic time)."""
        self.spin(max(0.0, not_before - time.monotonic()))
        n = len(self.diagnostics)
        assert self.spin_until(lambda: len(self.diagnostics) > n, 2.0), "no /diagnostics"
        return self.diagnostics[-1]


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory):
    """A controller (autostart, trigger=state, 20 Hz) running a saturated policy, its log, and
    the test's arm, ready once the policy has run on a state."""
    import rclpy

    root = tmp_path_factory.mktemp("limits")
    policy, _ = export_models(root, action_bias=10.0)
    env = ros_env(offset=47)
    log = root / "controller.log"
    proc = start_node(
        "controller_node",
        {
            "policy_path": policy,
            "trigger": "state",
            "control_rate_hz": RATE_HZ,
            "max_joint_velocity_rad_s": MAX_JOINT_VELOCITY_RAD_S,
            "range_margin": 10.0,  # states at the joint limits are outside the rollouts' range
            "stale_periods": 10.0,  # no watchdog hold between two exchanges on a busy machine
            "diagnostics_period_s": 0.2,
            "autostart": True,
        },
        params_file=CONFIG / "controller.yaml",
        env=env,
        log=log,
    )
    with nodes(proc):
        rclpy.init()
        try:
            arm = DiagnosedArm()
            assert arm.spin_until(lambda: arm.js.get_subscription_count() > 0, 30), log.read_text()
            deadline = time.monotonic() + 20
            while True:
                n_act = len(arm.actions)
                arm.send_state()
                if arm.spin_until(lambda n=n_act: len(arm.actions) > n, 0.2):
                    break
                assert time.monotonic() < deadline, log.read_text()
                arm.send_goal()
                arm.spin(0.1)
            arm.spin(0.1)
            yield arm, log
            arm.node.destroy_node()
        finally:
            rclpy.try_shutdown()


def _ramp(arm: Arm) -> tuple[list[np.ndarray], list[bool]]:
    """New goal (the limiter forgets its last command), one state near the limits, then
    ``RAMP_TICKS`` states 0.3 rad lower; returns the commands and whether the policy ran."""
    arm.send_goal()
    arm.spin(0.2)
    commands, ran = [], []
    for q in [NEAR_LIMIT] + [BELOW] * RAMP_TICKS:
        cmd, did_run = arm.exchange(q=q)
        commands.append(cmd)
        ran.append(did_run)
    return commands, ran


def test_commands_are_clamped_to_the_joint_limits_and_rate_limited(controller) -> None:
    arm, log = controller
    before = arm.next_diagnostics(time.monotonic())
    for _ in range(3):  # a state that overtook its puck pose is held: redo the ramp
        commands, ran = _ramp(arm)
        if all(ran):
            break
    assert all(ran), f"the policy did not run on every state: {ran}\n{log.read_text()}"
    after = arm.next_diagnostics(time.monotonic() + 0.05)
    cmds = np.array(commands)
    # every command stays inside the joint limits
    assert np.all(np.abs(cmds) <= LIMIT_RAD), cmds
    # the first command after the goal is only clamped: q + action = 2.83 becomes 2.8
    np.testing.assert_array_equal(cmds[0], np.full(3, LIMIT_RAD))
    # then each command moves at most max_joint_velocity * period toward the target 2.53 ...
    steps = np.diff(cmds, axis=0)
    assert np.all(np.abs(steps) <= MAX_STEP_RAD + 1e-9), steps
    # ... and exactly that much, since the target stays far away
    np.testing.assert_allclose(steps, -MAX_STEP_RAD, atol=1e-9)
    assert np.all(cmds[-1] > BELOW + ACTION_RAD)
    # diagnostics count the rate-limited ticks (at least those of this ramp)
    limited = int(after["rate_limited_ticks"]) - int(before["rate_limited_ticks"])
    assert limited >= RAMP_TICKS, (before, after)
    assert int(after["ticks"]) > int(before["ticks"])


def test_a_hold_is_not_rate_limited_and_stays_within_the_limits(controller) -> None:
    """An e-stop holds at once at the measured positions (clamped), however far the last
    command was; the next policy command starts a new history (only clamped)."""
    arm, _ = controller
    for _ in range(3):
        commands, ran = _ramp(arm)
        if all(ran):
            break
    assert all(ran)
    n = len(arm.commands)
    arm.e_stop.publish(arm.Bool(data=True))
    assert arm.spin_until(lambda: len(arm.commands) > n, 1.0)
    hold = arm.commands[n][1]
    np.testing.assert_array_equal(hold, BELOW)  # the last measured state, 0.22 rad away
    assert np.abs(hold - commands[-1]).max() > 10 * MAX_STEP_RAD
    arm.e_stop.publish(arm.Bool(data=False))
    arm.spin(0.1)
    for _ in range(3):
        cmd, did_run = arm.exchange(q=Q0)
        if did_run:
            break
    assert did_run
    np.testing.assert_allclose(cmd, Q0 + ACTION_RAD, atol=1e-6)
