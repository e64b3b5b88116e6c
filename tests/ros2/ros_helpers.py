"""Shared helpers of the ROS 2 node tests: small exported pusher models and node processes.

Every process runs with localhost-only discovery on a ROS domain of its own test run, and is
started in its own process group so that it is always killed at the end.

The tests of ``tests/ros2`` reach ``meta_train`` (networks and the ONNX exporter) through
:func:`meta_train_api` only, so a change of meta_train's layout is followed in one place. Test
modules import this file as ``ros_helpers``: pytest's default (``prepend``) import mode puts the
folder of a test module without ``__init__.py`` first on ``sys.path``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from meta_control.runtime import ModelMetadata

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "ros2_ws" / "src" / "meta_control"
CONFIG = PKG / "config"


def console_scripts() -> dict[str, str]:
    """The package's console scripts from its setup.py: name -> ``module:function``."""
    tree = ast.parse((PKG / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entries = ast.literal_eval(node.value)["console_scripts"]
            return {e.split("=")[0].strip(): e.split("=")[1].strip() for e in entries}
    raise AssertionError("setup.py has no console_scripts")


def ros_env(offset: int = 0) -> dict[str, str]:
    """Localhost-only discovery on a per-run domain (1..100), set here and for children."""
    env = {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(1 + (os.getpid() + offset) % 100),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def meta_train_api() -> types.SimpleNamespace:
    """The meta_train names these tests use, imported lazily (torch is slow to import):
    ``RecurrentActor`` and ``DynamicsEstimator`` (``meta_train.common.networks``),
    ``export_policy`` and ``export_estimator`` (``meta_train.common.onnx_export``)."""
    from meta_train.common.networks import DynamicsEstimator, RecurrentActor
    from meta_train.common.onnx_export import export_estimator, export_policy

    return types.SimpleNamespace(
        RecurrentActor=RecurrentActor,
        DynamicsEstimator=DynamicsEstimator,
        export_policy=export_policy,
        export_estimator=export_estimator,
    )


@functools.lru_cache(maxsize=4)
def observation_ranges(robot: str, episodes: int = 6, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Observations of random-action rollouts (min, max, samples), as training would record.

    Cached per process (the rollouts are deterministic); callers must not modify the arrays.
    """
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
    root: Path,
    robot: str = "pusher",
    hidden: int = 16,
    seed: int = 0,
    *,
    action_bias: float | None = None,
    estimator_bias: tuple[float, float] | None = None,
) -> tuple[Path, Path]:
    """Export an untrained recurrent policy and estimator for ``robot`` into ``root``.

    Observation ranges come from random-action rollouts, widened by 50%, so the runtime's range
    check accepts the observations of ordinary episodes.

    Args:
        root: output folder (``<robot>_policy.onnx``, ``<robot>_estimator.onnx`` and sidecars).
        robot: ``pusher`` or ``panda``.
        hidden: width of the networks.
        seed: torch seed of the initial weights.
        action_bias: when set, the policy ignores its inputs: its output layer has zero weights
            and this bias (before ``tanh``), so every action is ``tanh(bias) * max_offset`` on
            every joint (saturated for ``|bias| >> 1``).
        estimator_bias: when set, ``(mean, raw log-variance)`` biases of the estimator's output
            layer, whose weights are zeroed: a constant estimate whatever the input (e.g.
            ``(0, 1)`` gives a std of about 1.4, over the OOD threshold; ``(0, -6)`` about 0.05).
    """
    import torch

    from sim.envs import PushEnv

    mt = meta_train_api()
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
    actor = mt.RecurrentActor(len(lo), 2, n, float(env.max_offset[0]), hidden=hidden)
    actor.obs_norm.update(torch.as_tensor(samples, dtype=torch.float32))
    if action_bias is not None:
        with torch.no_grad():
            actor.out.weight.zero_()
            actor.out.bias.fill_(action_bias)
    policy = mt.export_policy(
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
    mu_dim = len(common["mu_names"])
    est = mt.DynamicsEstimator(
        len(lo), n, mu_dim, hidden=hidden, action_scale=float(env.max_offset[0])
    )
    est.obs_norm.update(torch.as_tensor(samples, dtype=torch.float32))
    if estimator_bias is not None:
        with torch.no_grad():
            est.out.weight.zero_()
            est.out.bias[:mu_dim] = estimator_bias[0]
            est.out.bias[mu_dim:] = estimator_bias[1]
    estimator = mt.export_estimator(
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
    remaps: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start ``python -m meta_control.<module>`` in its own process group.

    ``remaps`` are ROS remapping rules (``-r from:=to``), e.g. ``{"__node": "other_name"}``.
    """
    cmd = [sys.executable, "-m", f"meta_control.{module}", "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        cmd += ["-p", f"{key}:={value}"]
    for source, target in (remaps or {}).items():
        cmd += ["-r", f"{source}:={target}"]
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
