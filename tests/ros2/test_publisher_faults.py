"""A real free-running sim arm process is killed or paused under a real controller process:
the controller holds (brakes its commanded motion to rest within the arm's limits) within two
control periods of the inputs going stale, computes nothing from the stopped stream, and
resumes after a pause."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import CONFIG, export_models, nodes, ros_env, start_node
from test_controller_faults import Arm

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Untrained pusher models exported for this module."""
    return export_models(tmp_path_factory.mktemp("kill_models"))


@pytest.mark.parametrize("fault", ["killed", "paused"])
def test_state_publisher_killed_or_paused(models, tmp_path: Path, fault: str) -> None:
    """SIGKILL or SIGSTOP the arm process; stale-input threshold 2 periods (40 ms at 50 Hz)."""
    delay = float("nan")
    import rclpy

    env = ros_env(offset=47)
    rate = 50.0
    arm_proc = start_node(
        "sim_arm_node",
        {"control_rate_hz": rate, "seed": 3},
        params_file=CONFIG / "sim_arm.yaml",
        env=env,
        log=tmp_path / "arm.log",
    )
    ctrl = start_node(
        "controller_node",
        {
            "policy_path": models[0],
            "trigger": "state",
            "control_rate_hz": rate,
            "autostart": True,
            "use_sim_time": True,
        },
        params_file=CONFIG / "controller.yaml",
        env=env,
        log=tmp_path / "ctrl.log",
    )
    with nodes(arm_proc, ctrl):
        rclpy.init()
        try:
            arm = Arm()
            arm.watch_states()
            deadline = time.monotonic() + 30
            while len(arm.actions) < 10 or len(arm.states) < 10:  # until discovery settles
                assert time.monotonic() < deadline, (tmp_path / "ctrl.log").read_text()
                arm.send_goal()
                arm.spin(0.2)
            n_cmd = len(arm.commands)
            t_kill = time.monotonic()
            os.kill(arm_proc.pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
            arm.spin(0.4)
            after = arm.commands[n_cmd:]
            # A tick publishes its command before its action: commands received after the last
            # action are holds.
            t_last_action = arm.actions[-1][0]
            first = next((i for i, (t, _) in enumerate(after) if t > t_last_action), None)
            assert first is not None, "no hold after the fault"
            # Before the first hold: only answers to states already in flight (a few);
            # after it: holds, braking to rest.
            assert first <= 3
            holds = np.array([c for _, c in after[first:]])
            steps = np.abs(np.diff(holds, axis=0))
            assert np.all(steps[1:] <= steps[:-1] + 1e-12), f"holds do not brake: {steps}"
            np.testing.assert_array_equal(holds[-1], holds[-2])  # at rest
            t_hold = after[first][0]
            delay = t_hold - t_kill
            # stale after 2 periods, the watchdog fires within 1 more; 30 ms scheduling slack
            assert delay <= 3 / rate + 0.03, f"hold {delay * 1e3:.0f} ms after the fault"
            if fault == "paused":
                os.kill(arm_proc.pid, signal.SIGCONT)
                n = len(arm.actions)
                assert arm.spin_until(lambda: len(arm.actions) > n + 5, 5.0), "did not resume"
            arm.node.destroy_node()
        finally:
            rclpy.try_shutdown()
            if arm_proc.poll() is None:
                os.kill(arm_proc.pid, signal.SIGCONT)  # a stopped process ignores SIGINT
    print(f"\n{fault}: hold {delay * 1e3:.1f} ms after the fault")
