"""Shared helpers of the ROS 2 node tests: small exported pusher models and node processes.

Every process runs with localhost-only discovery on a ROS domain of its own test run, and is
started in its own process group so that it is always killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from meta_control.runtime import ModelMetadata

PKG = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "meta_control"
CONFIG = PKG / "config"


def ros_env(offset: int = 0) -> dict[str, str]:
    """Localhost-only discovery on a per-run domain (1..100), set here and for children."""
    env = {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(1 + (os.getpid() + offset) % 100),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def observation_ranges(robot: str, episodes: int = 6, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Observations of random-action rollouts (min, max, samples), as training would record."""
    from sim.envs import PushEnv

    env = PushEnv(robot)
    rng = np.random.default_rng(seed)
    samples = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=1000 + ep)
        samples.append(obs["observation"])
        for _ in range(env.max_episode_steps):
            obs, *_ = env.step(rng.uniform(-env.max_offset, env.max_offset))
            samples.append(obs["observation"])
    env.close()
    x = np.asarray(samples, dtype=np.float64)
    return x.min(0), x.max(0), x


def export_models(
    root: Path, robot: str = "pusher", hidden: int = 16, seed: int = 0
) -> tuple[Path, Path]:
    """Export an untrained recurrent policy and estimator for ``robot`` into ``root``.

    Observation ranges come from random-action rollouts, widened by 50%, so the runtime's range
    check accepts the observations of ordinary episodes.
    """
    import torch

    from meta_train.export import export_estimator, export_policy
    from meta_train.networks import DynamicsEstimator, RecurrentActor
    from sim.envs import PushEnv

    env = PushEnv(robot)
    lo, hi, samples = observation_ranges(robot, seed=seed)
    span = hi - lo
    lo, hi = lo - 0.5 * span - 0.05, hi + 0.5 * span + 0.05
    n = env.n_joints
    centre = np.asarray(env.task.area_center)
    half = env.task.area_half_size_m
    space = env.dynamics_space
    common = dict(
        env_id=f"Meta{robot.capitalize()}Push-v0",
        obs_terms=env.obs_terms,
        obs_dim=env.obs_dim,
        act_dim=n,
        joint_names=list(env.joint_names),
        action_meaning="joint_position_offset",
        action_low=(-env.max_offset).astype(float).tolist(),
        action_high=env.max_offset.astype(float).tolist(),
        joint_limits_low=env.world.joint_lower.tolist(),
        joint_limits_high=env.world.joint_upper.tolist(),
        control_period_s=env.control_period_s,
        mu_names=list(env.mu_names),
        mu_train_low=space.train_low.tolist(),
        mu_train_high=space.train_high.tolist(),
        obs_low=lo.tolist(),
        obs_high=hi.tolist(),
        source_commit="test",
    )
    env.close()
    torch.manual_seed(seed)
    actor = RecurrentActor(len(lo), 2, n, float(env.max_offset[0]), hidden=hidden)
    actor.obs_norm.update(torch.as_tensor(samples, dtype=torch.float32))
    policy = export_policy(
        actor.eval(),
        root / f"{robot}_policy.onnx",
        ModelMetadata(
            kind="policy",
            goal_dim=2,
            goal_low=(centre - half).tolist(),
            goal_high=(centre + half).tolist(),
            **common,
        ),
    )
    est = DynamicsEstimator(
        len(lo), n, len(common["mu_names"]), hidden=hidden, action_scale=float(env.max_offset[0])
    )
    est.obs_norm.update(torch.as_tensor(samples, dtype=torch.float32))
    estimator = export_estimator(
        est.eval(),
        root / f"{robot}_estimator.onnx",
        ModelMetadata(kind="estimator", goal_dim=0, goal_low=[], goal_high=[], **common),
    )
    return policy, estimator


def start_node(
    module: str,
    params: dict[str, object] | None = None,
    params_file: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen:
    """Start ``python -m meta_control.<module>`` in its own process group."""
    cmd = [sys.executable, "-m", f"meta_control.{module}", "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        cmd += ["-p", f"{key}:={value}"]
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        cmd, env=env or ros_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(procs: Sequence[subprocess.Popen], timeout_s: float = 5.0) -> None:
    """SIGINT each process group, then SIGKILL whatever is left."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


@contextlib.contextmanager
def nodes(*procs: subprocess.Popen) -> Iterator[tuple[subprocess.Popen, ...]]:
    """Context manager that always stops ``procs``."""
    try:
        yield procs
    finally:
        stop(procs)
