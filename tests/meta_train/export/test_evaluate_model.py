"""``meta-train evaluate-model --limits``: the controller's motion limiter between the policy and
the sim, as the controller runs on the arm (tests/ros2/test_closed_loop.py checks that the ROS
closed loop takes the same limited steps)."""

from __future__ import annotations

from pathlib import Path

from meta_control.runtime import PolicyRuntime
from meta_train.cli import main
from meta_train.export.evaluate_model import (
    _env,
    _rollout,
    command_limiter,
    evaluate_policy_model,
)

MODELS = Path(__file__).resolve().parents[3] / "models"


def test_the_panda_limits_bind_on_the_shipped_panda_policy():
    policy = PolicyRuntime(MODELS / "panda_policy.onnx")
    limiter = command_limiter(policy, "panda")
    env = _env(policy.metadata, "train", None)
    try:
        _rollout(env, policy, 10_000, limiter=limiter)
    finally:
        env.close()
    assert limiter.ticks == env.max_episode_steps
    # libfranka's acceleration limits (less the margin) are below what 0.05 rad steps at 25 Hz
    # ask for: the limiter shapes the episode
    assert limiter.acceleration_limited_ticks > 0


def test_limits_are_recorded_and_do_not_bind_on_the_pusher():
    path = MODELS / "pusher_policy.onnx"
    free = evaluate_policy_model(path, 3)
    limited = evaluate_policy_model(path, 3, limits="pusher")
    assert free["limits"] is None and limited["limits"] == "pusher"
    assert limited["final_distance_m"] == free["final_distance_m"]


def test_an_unknown_limits_file_is_one_clear_error(capsys):
    assert main(["evaluate-model", str(MODELS / "pusher_policy.onnx"), "--episodes", "1",
                 "--limits", "no_such_arm"]) == 2
    err = capsys.readouterr().err
    assert "no limits file for robot 'no_such_arm'" in err and "Traceback" not in err
