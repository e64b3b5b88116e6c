"""Evaluate a policy over N episodes: success at 0.05 m and 0.07 m with confidence intervals.

    meta-train evaluate runs/<name> --episodes 100 --dynamics train heldout
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

import sim  # noqa: F401  (registers the envs)
from meta_train.common.policies import BatchPolicy, load_actor_from_run


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (sane at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EvalResult:
    """Success rates and final distances over ``episodes`` episodes of ``episode_steps``
    control steps each."""

    episodes: int
    success_005: float
    success_007: float
    ci_005: tuple[float, float]
    ci_007: tuple[float, float]
    final_distance_m: float
    episode_steps: int = 0

    def row(self) -> str:
        return (f"{self.success_005:.2f} [{self.ci_005[0]:.2f}, {self.ci_005[1]:.2f}]  "
                f"{self.success_007:.2f} [{self.ci_007[0]:.2f}, {self.ci_007[1]:.2f}]")

    def to_dict(self) -> dict:
        return {"episodes": self.episodes, "success_0.05": self.success_005,
                "success_0.07": self.success_007, "ci95_0.05": list(self.ci_005),
                "ci95_0.07": list(self.ci_007), "final_distance_m": self.final_distance_m,
                "episode_steps": self.episode_steps}


def make_eval_env(env_id: str, env_kwargs: dict, dynamics: str, fixed: Sequence[str] = ()):
    """An env sampling training-range (``train``), held-out (``heldout``) or nominal dynamics,
    with the ``fixed`` parameters or groups held at their nominal values."""
    kw = dict(env_kwargs)
    kw.pop("randomize", None)
    if fixed:
        kw["fixed_dynamics"] = [*kw.get("fixed_dynamics", ()), *fixed]
    if dynamics == "heldout":
        kw["dynamics_mode"] = "heldout"
    elif dynamics == "nominal":
        kw["randomize"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, **kw).unwrapped


def evaluate_actor(
    actor, variant: str, history: int, env, episodes: int, seed: int, device="cpu",
    success_key: str | None = None,
) -> EvalResult:
    """Roll out the deterministic actor for ``episodes`` episodes with seeds ``seed + i``."""
    policy = BatchPolicy(actor, variant, history, 1, device)
    horizon = getattr(env, "max_episode_steps", None) or env.spec.max_episode_steps
    s5, s7, dist = [], [], []
    was_training = actor.training
    actor.eval()
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        policy.reset()
        for _ in range(horizon):
            a = policy(obs["observation"][None], obs["desired_goal"][None])[0]
            policy.observe_action(a[None])
            obs, _, _, _, info = env.step(a)
        if success_key is not None or "is_success_0.05" not in info:
            key = success_key or "is_success"  # envs with a single success threshold
            s5.append(bool(info[key]))
            s7.append(bool(info[key]))
        else:
            s5.append(bool(info["is_success_0.05"]))
            s7.append(bool(info["is_success_0.07"]))
        dist.append(float(info.get("distance", np.nan)))
    actor.train(was_training)
    n = len(s5)
    return EvalResult(n, float(np.mean(s5)), float(np.mean(s7)), wilson_interval(sum(s5), n),
                      wilson_interval(sum(s7), n), float(np.nanmean(dist)), int(horizon))


@torch.no_grad()
def evaluate_run(
    run_dir, episodes: int, dynamics: list[str], seed: int = 10_000, which: str = "best",
    fixed: Sequence[str] = (), episode_steps: int | None = None,
) -> dict:
    """Evaluate one checkpoint of a run on each dynamics setting, with reset seeds ``seed + i``.

    ``which``: ``best`` (by the run's periodic evaluation; the latest when there is no ``best``
    yet), ``final`` or ``latest``. ``fixed``: dynamics parameters or groups (e.g.
    ``obs_noise_frac``, ``puck_friction``) kept at their nominal values, to measure what
    randomizing each costs the policy; every other parameter is sampled as usual.
    ``episode_steps``: evaluate on episodes of this many control steps instead of the run's
    (success is read at the last step).
    """
    actor, run = load_actor_from_run(run_dir, which)
    env_kwargs = dict(run.env_kwargs)
    if episode_steps is not None:  # the env refuses a length < 1
        env_kwargs["episode_steps"] = episode_steps
    out = {}
    for d in dynamics:
        env = make_eval_env(run.env_id, env_kwargs, d, fixed)
        out[d] = evaluate_actor(actor, run.variant, run.history, env, episodes, seed)
        env.close()
    return out
