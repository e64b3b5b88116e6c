"""The controller's reaction to the estimator's out-of-distribution flag, with real processes.

1. A controller process (``on_ood: hold``) and the test as its arm and its estimator: a silent
   OOD stream holds, ``ood_sustain_periods`` flagged estimates in a row engage the hold, which
   stays latched until the next goal.
2. The whole chain (the demo: simulated arm, controller, estimator, recorder): an episode in a
   held-out band the shipped estimator flags runs until its flag is sustained and is held
   from then to its end (read from the recorded bag); an episode on training-range dynamics
   it does not flag runs to its end. Which seeds those are is worked out first on the same
   models in the gym env.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import CONFIG, REPO, export_models, nodes, ros_env, start_node
from test_controller_faults import RATE_HZ, Arm

from meta_control.bags import BagReader
from meta_control.runtime import EstimatorRuntime, PolicyRuntime
from meta_control.topics import TOPIC_OOD

pytestmark = pytest.mark.ros

SUSTAIN = 3
IGNORE_STEPS = 10
"""The estimator node's ``ood_ignore_steps`` (estimator.yaml)."""


@pytest.fixture(scope="module")
def arm_with_reaction(tmp_path_factory):
    import rclpy
    from std_msgs.msg import Bool

    policy, _ = export_models(tmp_path_factory.mktemp("ood_models"))
    env = ros_env(offset=43)
    log = tmp_path_factory.mktemp("ood_logs") / "controller.log"
    proc = start_node(
        "controller_node",
        {"policy_path": policy, "trigger": "state", "control_rate_hz": RATE_HZ,
         "autostart": True, "on_ood": "hold", "ood_sustain_periods": SUSTAIN,
         "ood_release": "episode", "ood_stale_periods": 30.0},
        params_file=CONFIG / "controller.yaml", env=env, log=log,
    )
    with nodes(proc):
        rclpy.init()
        try:
            arm = Arm()
            arm.ood = arm.node.create_publisher(Bool, "/dynamics_ood", 10)
            assert arm.spin_until(lambda: arm.js.get_subscription_count() > 0, 30), \
                log.read_text()
            assert arm.spin_until(lambda: arm.ood.get_subscription_count() > 0, 30)
            yield arm, log
            arm.node.destroy_node()
        finally:
            rclpy.try_shutdown()


def _step(arm, flag: bool | None) -> bool:
    """Publish an OOD flag (None: none), then one state; whether the policy ran for it."""
    from std_msgs.msg import Bool

    if flag is not None:
        arm.ood.publish(Bool(data=flag))
        arm.spin(0.005)
    _, ran = arm.exchange()
    return ran


def _new_episode(arm) -> None:
    """A goal, then states with a clear OOD flag until the policy runs.

    Discovery is asymmetric: until the controller has matched the test's publishers a state
    may bring no command back at all, so this loop waits on the policy's action rather than
    on an exchange.
    """
    from std_msgs.msg import Bool

    deadline = time.monotonic() + 20
    while True:
        arm.send_goal()
        arm.spin(0.05)
        n_act = len(arm.actions)
        arm.ood.publish(Bool(data=False))
        arm.spin(0.005)
        arm.send_state()
        if arm.spin_until(lambda n=n_act: len(arm.actions) > n, 0.2):
            break
        assert time.monotonic() < deadline, "the policy never ran on a fresh goal"
    arm.spin(0.05)


def test_a_silent_ood_stream_holds_and_a_sustained_flag_latches_until_the_next_goal(
        arm_with_reaction):
    arm, log = arm_with_reaction
    _new_episode(arm)
    assert _step(arm, False) and _step(arm, False)
    # flagged estimates: the policy runs until the SUSTAIN-th, then holds
    ran = [_step(arm, True) for _ in range(SUSTAIN + 1)]
    assert ran[: SUSTAIN - 1] == [True] * (SUSTAIN - 1) and not ran[-1], ran
    # latched: clear estimates do not release it within the episode
    assert not any(_step(arm, False) for _ in range(4))
    # the next goal releases it
    _new_episode(arm)
    assert _step(arm, False)
    # a stream that stops counts as flagged once it has been silent for ood_stale_periods
    # (30 periods of 10 ms here), and a clear estimate ends it
    time.sleep(0.5)
    assert not _step(arm, None)
    assert _step(arm, False) or _step(arm, False)


def _sustained_step(flags: list[bool]) -> int | None:
    """The first observation index at which ``SUSTAIN`` estimates in a row have been flagged."""
    run = 0
    for t, f in enumerate(flags):
        run = run + 1 if f else 0
        if run >= SUSTAIN:
            return t
    return None


def _gym_flags(sample_ranges: dict | None, seed: int) -> tuple[list[bool], int]:
    """The estimator node's flags over one lock-step episode of the shipped models, replayed
    in the gym env; and the episode's length."""
    from sim.envs import PushEnv

    env = PushEnv("pusher", sample_ranges=sample_ranges)
    pol = PolicyRuntime(REPO / "models" / "pusher_policy.onnx")
    est = EstimatorRuntime(REPO / "models" / "pusher_estimator.onnx")
    obs, _ = env.reset(seed=seed)
    prev = np.zeros(env.n_joints)
    flags = []
    for t in range(env.max_episode_steps):
        est.step(obs["observation"], prev)
        flags.append(t + 1 > IGNORE_STEPS and est.ood_score > 1.0)
        prev = pol.step(obs["observation"], obs["desired_goal"])
        obs, *_ = env.step(prev)
    steps = env.max_episode_steps
    env.close()
    return flags, steps


def _demo(tmp_path: Path, seed: int, sample_ranges: dict | None, offset: int) -> Path:
    bag = tmp_path / f"bag_{seed}_{offset}"
    env = ros_env(offset=offset)
    cmd = [sys.executable, "-m", "meta_control.demo", "--episodes", "1", "--seed", str(seed),
           "--on-ood", "hold", "--record", str(bag), "--domain-id", env["ROS_DOMAIN_ID"],
           "--log-dir", str(tmp_path / f"logs_{seed}_{offset}")]
    if sample_ranges:
        cmd += ["--sample-ranges", json.dumps(sample_ranges)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return bag


def _bag_flags_and_actions(bag: Path) -> tuple[list[tuple[int, bool]], list[int]]:
    """The recorded OOD flags (receive time, flag) and policy actions' receive times."""
    flags, actions = [], []
    for m in BagReader(bag):
        if m.topic == TOPIC_OOD:
            flags.append((m.log_time_ns, bool(m.msg.data)))
        elif m.topic == "/meta_controller/policy_action":
            actions.append(m.log_time_ns)
    return flags, actions


def _sustained_at(flags: list[tuple[int, bool]]) -> int | None:
    """Receive time of the flag that made ``SUSTAIN`` flagged estimates in a row."""
    t = _sustained_step([f for _, f in flags])
    return None if t is None else flags[t][0]


@pytest.mark.slow
def test_a_held_out_band_is_held_within_the_stated_periods_and_training_dynamics_run(tmp_path):
    meta = json.loads((REPO / "models" / "pusher_estimator.json").read_text())
    if meta.get("io_version", 1) != 2:
        pytest.skip("the shipped estimator has no forward-model OOD rule")
    band = {"table_height": [0.77, 0.7833]}  # beyond the range's top, the others in it
    flagged = next((s for s in range(30) if _sustained_step(_gym_flags(band, s)[0]) is not None),
                   None)
    clear = next((s for s in range(30) if _sustained_step(_gym_flags(None, s)[0]) is None),
                 None)
    assert flagged is not None and clear is not None
    # In the band: the estimator node's flag is sustained and the arm is then held to the end
    # of the episode; before the flag was sustained the states got their actions. (How many
    # actions come after it depends on the load: in lock-step the loop runs faster than real
    # time and the estimator is not part of the lock, so its flags reach the controller some
    # states late. The reaction to flags as they arrive, within its stated number of
    # estimates, is the first test's.)
    flags, actions = _bag_flags_and_actions(_demo(tmp_path, flagged, band, offset=47))
    t_sustained = _sustained_at(flags)
    assert t_sustained is not None, flags
    steps = _gym_flags(None, flagged)[1]
    # (the recorder receives the flags and actions in the order the controller did, give or
    # take a message or two)
    states_before = sum(1 for t, _ in flags if t <= t_sustained)
    assert states_before - 2 <= len(actions) < steps, (states_before, len(actions), steps)
    # on training dynamics the estimator does not flag: every state gets its action (the
    # episode's steps, and the last state's)
    flags, actions = _bag_flags_and_actions(_demo(tmp_path, clear, None, offset=53))
    assert _sustained_at(flags) is None, flags
    assert len(actions) == _gym_flags(None, clear)[1] + 1
