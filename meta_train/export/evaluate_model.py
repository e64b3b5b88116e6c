"""Measure an exported model as the robot runs it, and record the result in its sidecar.

    meta-train evaluate-model models/pusher_policy.onnx --episodes 1000 --record
    meta-train evaluate-model models/pusher_estimator.onnx --episodes 200 --record

A policy is stepped through :class:`~meta_control.runtime.PolicyRuntime` (the nodes' runtime:
input checks, the ONNX graph, its recurrent state) in the sim it was trained in, on reset
seeds ``seed + i``; an input the runtime refuses is held (zero offset, recurrent state reset),
as the controller does. An estimator is stepped on the closed loop of a policy (by default the
shipped one beside it) and scored by its error after the episode's last state against the
constant estimate at the centre of the training ranges (the median of the training
distribution, in each parameter's sampling space).

``--limits panda`` (a limits file, named as the controller's ``limits`` parameter names it)
puts the controller's motion limiter between the policy and the arm, as the controller runs on
it with forward position commands: each tick's target ``q + action`` becomes the next position of
a motion within the file's velocity, acceleration and jerk limits (less its margin), and the sim
receives that position's offset from ``q``; an estimator is given the policy's action, as the
controller publishes it. Without it the sim takes the policy's offsets as
they come (the conditions it was trained in). The simulated demo's ROS closed loop takes the
same limited steps (tests/ros2/test_closed_loop.py replays it exactly in gym with float64
offsets; this rollout hands the env float32 actions, its action type, so a single
contact-rich episode can end differently); the controller's workspace guard is not modelled
(its holds are counted by the demo).

``--record`` writes the headline (metric, value, 95% interval, episodes, seeds, command) into
the sidecar's ``evaluation`` field, atomically; the ONNX file is not touched.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from meta_control.limits import enforced_limits, load_robot_limits, resolve_limits_path
from meta_control.motion import MotionLimiter
from meta_control.runtime import (
    EstimatorRuntime,
    InputRejected,
    PolicyRuntime,
    load_metadata,
    sidecar_path,
)
from meta_train.common.evaluation import make_eval_env, wilson_interval
from meta_train.common.files import atomic_write


def _env(meta, dynamics: str, episode_steps: int | None):
    kwargs = dict(meta.training_config.get("env_kwargs", {}))
    if "policy" in meta.training_config:  # an estimator's config holds its policy's
        kwargs = dict(meta.training_config["policy"].get("env_kwargs", {}))
    if episode_steps is not None:
        kwargs["episode_steps"] = episode_steps
    return make_eval_env(meta.env_id, kwargs, dynamics)


def command_limiter(policy: PolicyRuntime, limits: str) -> MotionLimiter:
    """The controller's motion limiter for ``policy`` with the limits file ``limits`` (a bare
    name such as ``panda``, or a path), forward position commands at the policy's period."""
    meta = policy.metadata
    robot_limits = load_robot_limits(resolve_limits_path(limits, ""))
    enforced = enforced_limits(robot_limits, list(meta.joint_names), meta.joint_limits_low,
                               meta.joint_limits_high, robot_limits.margin)
    return MotionLimiter(enforced, meta.control_period_s, smooth=False)


def _rollout(env, policy: PolicyRuntime, seed: int, on_state=None,
             limiter: MotionLimiter | None = None) -> tuple[dict, int]:
    """One episode of the runtime policy; ``on_state(obs, prev_action, info)`` sees every
    state; ``limiter`` shapes the commands as the controller does (module docstring). Returns
    the last info and the number of refused inputs."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    n = env.action_space.shape[0]
    prev = np.zeros(n)
    if limiter is not None:
        limiter.reset(obs["observation"][:n])
    refused = 0
    for _ in range(env.max_episode_steps):
        if on_state is not None:
            on_state(obs["observation"], prev, info)
        try:
            action = policy.step(obs["observation"], obs["desired_goal"])
        except InputRejected:
            refused += 1
            policy.reset()
            action = np.zeros_like(prev)
        applied = action
        if limiter is not None:  # the absolute target, limited; the sim recovers the offset
            q = obs["observation"][:n].astype(np.float64)
            step = limiter.plan(q + action)
            limiter.commit(step)
            applied = step.position - q
        obs, _, _, _, info = env.step(applied.astype(np.float32))
        prev = action  # what the controller publishes as its action: the policy's own
    if on_state is not None:
        on_state(obs["observation"], prev, info)
    return info, refused


def evaluate_policy_model(path: str | Path, episodes: int, dynamics: str = "train",
                          seed: int = 10_000, episode_steps: int | None = None,
                          limits: str | None = None) -> dict[str, Any]:
    """Success of an exported policy at 0.05 m and 0.07 m with 95% Wilson intervals; with
    ``limits``, through the controller's motion limiter (module docstring)."""
    policy = PolicyRuntime(path)
    limiter = command_limiter(policy, limits) if limits else None
    env = _env(policy.metadata, dynamics, episode_steps)
    s5 = s7 = refused = 0
    dist = []
    try:
        for ep in range(episodes):
            info, r = _rollout(env, policy, seed + ep, limiter=limiter)
            s5 += bool(info["is_success_0.05"])
            s7 += bool(info["is_success_0.07"])
            dist.append(float(info["distance"]))
            refused += r
        horizon = env.max_episode_steps
    finally:
        env.close()
    return {"kind": "policy", "metric": "success_0.05", "value": s5 / episodes,
            "ci95": list(wilson_interval(s5, episodes)), "success_0.07": s7 / episodes,
            "ci95_0.07": list(wilson_interval(s7, episodes)),
            "final_distance_m": float(np.mean(dist)), "episodes": episodes,
            "dynamics": dynamics, "reset_seed": seed, "episode_steps": horizon,
            "refused_inputs": refused, "limits": limits or None}


def evaluate_estimator_model(path: str | Path, episodes: int, dynamics: str = "train",
                             seed: int = 10_000, policy_path: str | Path | None = None,
                             episode_steps: int | None = None,
                             contact_k: int | None = None,
                             limits: str | None = None) -> dict[str, Any]:
    """Error of an exported estimator, per parameter, as a ratio of the RMSE of the constant
    estimate 0 (normalised space: the training ranges' median), after each episode's last state
    or, with ``contact_k``, ``contact_k`` steps after the first contact with the puck (episodes
    without one, or too short, are left out); the headline is the mean ratio over the
    parameters (below 1: better than the constant); with ``limits``, the policy's commands pass
    the controller's motion limiter (module docstring)."""
    est = EstimatorRuntime(path)
    policy_path = Path(policy_path) if policy_path else Path(path).with_name(
        Path(path).name.replace("_estimator", "_policy"))
    policy = PolicyRuntime(policy_path)
    limiter = command_limiter(policy, limits) if limits else None
    env = _env(est.metadata, dynamics, episode_steps)
    names = list(est.metadata.mu_names)
    finals, truths = [], []
    try:
        for ep in range(episodes):
            est.reset()
            means: list[np.ndarray] = []

            def on_state(obs, prev, _info, _means=means):
                try:
                    mean, _ = est.step(obs, prev)
                except InputRejected:
                    mean = _means[-1] if _means else np.zeros(len(names))
                _means.append(mean)

            info, _ = _rollout(env, policy, seed + ep, on_state, limiter)
            if contact_k is None:
                finals.append(means[-1])
            elif 0 <= info["contact_step"] and info["contact_step"] + contact_k < len(means):
                finals.append(means[info["contact_step"] + contact_k])
            else:
                continue
            truths.append(np.asarray(info["mu"], dtype=np.float64))
        horizon = env.max_episode_steps
    finally:
        env.close()
    if len(finals) < 2:
        raise ValueError(f"only {len(finals)} episodes had a contact and {contact_k} steps after")
    err = np.asarray(finals) - np.asarray(truths)
    episodes = len(finals)
    rmse = np.sqrt(np.mean(err**2, axis=0))
    const = np.sqrt(np.mean(np.asarray(truths) ** 2, axis=0))
    ratio = rmse / np.maximum(const, 1e-9)
    # a 95% interval of the mean ratio by bootstrap over episodes (fixed generator)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(1000):
        i = rng.integers(0, episodes, episodes)
        b = np.sqrt(np.mean(err[i] ** 2, 0)) / np.maximum(
            np.sqrt(np.mean(np.asarray(truths)[i] ** 2, 0)), 1e-9)
        boots.append(float(np.mean(b)))
    metric = ("rmse_ratio_to_constant" if contact_k is None
              else f"rmse_ratio_to_constant_at_contact_plus_{contact_k}")
    return {"kind": "estimator", "metric": metric, "value": float(ratio.mean()),
            "contact_k": contact_k,
            "ci95": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
            "per_parameter": {n: float(r) for n, r in zip(names, ratio, strict=True)},
            "episodes": episodes, "dynamics": dynamics, "reset_seed": seed,
            "episode_steps": horizon, "policy": policy_path.name,
            "policy_sha256": policy.metadata.onnx_sha256, "limits": limits or None}


def evaluate_model(path: str | Path, episodes: int, dynamics: str = "train",
                   seed: int = 10_000, episode_steps: int | None = None,
                   policy_path: str | Path | None = None,
                   contact_k: int | None = None,
                   limits: str | None = None) -> dict[str, Any]:
    """:func:`evaluate_policy_model` or :func:`evaluate_estimator_model` by the model's kind."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    kind = load_metadata(path).kind
    if kind == "policy":
        return evaluate_policy_model(path, episodes, dynamics, seed, episode_steps, limits)
    return evaluate_estimator_model(path, episodes, dynamics, seed, policy_path, episode_steps,
                                    contact_k, limits)


def record_evaluation(path: str | Path, evaluation: dict[str, Any]) -> Path:
    """Write ``evaluation`` into the model's sidecar (atomically), after checking that the
    model still verifies; returns the sidecar's path."""
    path = Path(path)
    runtime_cls = PolicyRuntime if load_metadata(path).kind == "policy" else EstimatorRuntime
    meta = runtime_cls(path).metadata
    if not all(isinstance(v, (int, float)) and math.isfinite(v)
               for v in (evaluation["value"], *evaluation["ci95"])):
        raise ValueError(f"evaluation values must be finite numbers, got {evaluation}")
    meta = dataclasses.replace(meta, evaluation=json.loads(json.dumps(evaluation)))
    atomic_write(sidecar_path(path), (meta.to_json() + "\n").encode("utf-8"))
    runtime_cls(path)  # the pair still loads
    return sidecar_path(path)


def headline(evaluation: dict[str, Any]) -> str:
    """One line: metric, value and interval, episodes, dynamics."""
    lo, hi = evaluation["ci95"]
    return (f"{evaluation['metric']} {evaluation['value']:.3f} [{lo:.3f}, {hi:.3f}] over "
            f"{evaluation['episodes']} episodes ({evaluation['dynamics']} dynamics, reset seeds "
            f"{evaluation['reset_seed']}+)")
