"""Lifecycle of the real controller process: silent unless active, and cycles leak nothing.

Run under both executors the controller offers (``executor: single | events``): lifecycle and
parameter services, the loop timer created on activation, and a clean exit on SIGINT.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from ros_helpers import CONFIG, export_models, nodes, ros_env, start_node
from test_controller_faults import Arm

pytestmark = pytest.mark.ros

CYCLES = 5


def _proc_stats(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    threads = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads")
    )
    return {"rss_kb": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


@pytest.mark.parametrize("executor", ["single", "events"])
def test_lifecycle_gates_commands_and_cycles_leak_nothing(tmp_path: Path, executor: str) -> None:
    import rclpy
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    policy, _ = export_models(tmp_path)
    swapped = tmp_path / "swap" / policy.name
    swapped.parent.mkdir()
    shutil.copy(policy, swapped)
    shutil.copy(policy.with_suffix(".json"), swapped.with_suffix(".json"))
    env = ros_env(offset=61 if executor == "single" else 62)
    log = tmp_path / "controller.log"
    proc = start_node(
        "controller_node",
        {"policy_path": policy, "control_rate_hz": 50.0, "executor": executor},
        params_file=CONFIG / "controller.yaml",
        env=env,
        log=log,
    )
    with nodes(proc):
        rclpy.init()
        try:
            arm = Arm()
            client = arm.node.create_client(ChangeState, "/meta_controller/change_state")
            params = arm.node.create_client(SetParameters, "/meta_controller/set_parameters")
            assert arm.spin_until(client.service_is_ready, 30), log.read_text()

            def change(transition: int) -> None:
                future = client.call_async(
                    ChangeState.Request(transition=Transition(id=transition))
                )
                assert arm.spin_until(future.done, 10) and future.result().success, log.read_text()

            def stream(seconds: float) -> int:
                """Publish good states at 50 Hz; return the number of commands received."""
                n = len(arm.commands)
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    arm.send_state()
                    arm.send_goal() if len(arm.actions) == 0 else None
                    arm.spin(0.02)
                return len(arm.commands) - n

            assert stream(0.5) == 0, "commands while unconfigured"
            stats = []
            for cycle in range(CYCLES):
                change(Transition.TRANSITION_CONFIGURE)
                assert stream(0.4) == 0, "commands while inactive"
                change(Transition.TRANSITION_ACTIVATE)
                arm.send_goal()
                assert stream(0.6) > 5, f"no commands while active (cycle {cycle})"
                if cycle == 0:
                    # Model swap while active: same contract accepted, recurrent state reset.
                    req = SetParameters.Request(
                        parameters=[
                            Parameter(
                                name="policy_path",
                                value=ParameterValue(
                                    type=ParameterType.PARAMETER_STRING, string_value=str(swapped)
                                ),
                            )
                        ]
                    )
                    future = params.call_async(req)
                    assert arm.spin_until(future.done, 10)
                    assert future.result().results[0].successful
                    assert stream(0.3) > 3
                change(Transition.TRANSITION_DEACTIVATE)
                arm.spin(0.1)  # let in-flight commands land
                assert stream(0.4) == 0, "commands after deactivate"
                change(Transition.TRANSITION_CLEANUP)
                arm.spin(0.2)
                stats.append(_proc_stats(proc.pid))
                pubs = arm.node.count_publishers("/forward_position_controller/commands")
                assert pubs == 0, "cleanup left the command publisher"
            first, last = stats[1], stats[-1]
            assert last["fds"] <= first["fds"], stats
            assert last["threads"] <= first["threads"], stats
            assert last["rss_kb"] - first["rss_kb"] < 4096, stats
            print(f"\nlifecycle ({executor}): {CYCLES} cycles, process stats per cycle {stats}")
            arm.node.destroy_node()
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(5) == 0, f"no clean exit on SIGINT\n{log.read_text()}"
        finally:
            rclpy.try_shutdown()
