"""Closed loop over ROS 2 (three node processes, lock-step) equals the gym evaluation: on the
pusher with freshly exported models, and on the Panda with the shipped ones (the demo's
``--robot panda`` default)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import export_models, ros_env

from meta_control.paths import default_model
from meta_control.runtime import EstimatorRuntime, PolicyRuntime

pytestmark = pytest.mark.ros

EPISODES, SEED = 4, 11
TOLERANCE_M = 1e-4
"""Lock-step replays gym up to the float rounding of ``(q + a) - q`` (the arm receives absolute
targets and recovers the offset), which contact dynamics amplify to at most ~1e-5 m over an
episode; success flags must be identical."""


def gym_evaluation(
    robot: str, policy: Path, estimator: Path, episodes: int, seed: int
) -> list[dict]:
    """The same models on ``PushEnv`` with the seeds the arm node uses (seed + k), each action
    shaped by the controller's motion limiter with the robot's limits file, as the controller
    shapes it (the Panda's acceleration limits bind; the pusher's do not)."""
    from meta_train.export.evaluate_model import command_limiter
    from sim.envs import PushEnv

    env = PushEnv(robot)
    pol, est = PolicyRuntime(policy), EstimatorRuntime(estimator)
    limiter = command_limiter(pol, robot)
    n, out = env.n_joints, []
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        pol.reset()
        est.reset()
        limiter.reset(obs["observation"][:n])
        prev = np.zeros(n)
        for _ in range(env.max_episode_steps):
            est.step(obs["observation"], prev)
            q = obs["observation"][:n].astype(np.float64)
            prev = pol.step(obs["observation"], obs["desired_goal"])
            step = limiter.plan(q + prev)
            limiter.commit(step)
            obs, _, _, _, info = env.step(step.position - q)  # prev: the action as published
        mean, _ = est.step(obs["observation"], prev)
        out.append(
            {
                "distance": info["distance"],
                "success": bool(info["is_success_0.05"]),
                "mu_err": float(np.mean(np.abs(mean - info["mu"]))),
                "start_puck": None,
            }
        )
    env.close()
    return out


@pytest.mark.parametrize(("robot", "episodes"), [("pusher", EPISODES), ("panda", 2)])
def test_ros_closed_loop_matches_gym_evaluation(robot: str, episodes: int, tmp_path: Path) -> None:
    if robot == "pusher":
        policy, estimator = export_models(tmp_path)
        models = ["--policy", str(policy), "--estimator", str(estimator)]
    else:  # the demo's defaults: the shipped Panda models
        policy, estimator = default_model(robot, "policy"), default_model(robot, "estimator")
        models = []
    out = tmp_path / "demo.json"
    env = ros_env(offset=17 if robot == "pusher" else 18)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "meta_control.demo",
            "--robot",
            robot,
            "--episodes",
            str(episodes),
            "--seed",
            str(SEED),
            *models,
            "--domain-id",
            env["ROS_DOMAIN_ID"],
            "--output-json",
            str(out),
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success rate" in proc.stdout and "round trip" in proc.stdout
    ros = json.loads(out.read_text())
    reference = gym_evaluation(robot, policy, estimator, episodes, SEED)
    ros_eps = ros["episodes"]
    assert [e["seed"] for e in ros_eps] == [SEED + k for k in range(episodes)]
    dist_ros = np.array([e["final_distance_m"] for e in ros_eps])
    dist_gym = np.array([r["distance"] for r in reference])
    np.testing.assert_allclose(dist_ros, dist_gym, rtol=0, atol=TOLERANCE_M)
    assert [e["success_005"] for e in ros_eps] == [r["success"] for r in reference]
    summary = ros["summary"]
    assert summary["lock_step_timeouts"] == 0 and summary["controller_holds"] == 0
    # The estimator ran on the same stream with the same previous actions.
    for e, r in zip(ros_eps, reference, strict=True):
        if e["estimates"] == e["steps"] + 1:
            assert e["mu_abs_error"] == pytest.approx(r["mu_err"], abs=1e-5)
    assert summary["rtt_p50_ms"] > 0 and np.isfinite(summary["rtt_p99_ms"])
