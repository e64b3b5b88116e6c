"""From a training run to a deployable model: fill the deployment contract and export.

    meta-train export runs/<run> --out models/pusher_policy.onnx

The contract (observation terms, joint names and limits, action bounds, control period, dynamics
names and training ranges, observation ranges seen in training) is read from the env and the
run, never typed by hand, so the ROS side gets exactly what training used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meta_train.common.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from meta_train.common.contract import contract_fields, make_contract_env
from meta_train.common.onnx_export import ModelMetadata, export_policy
from meta_train.common.policies import load_actor_from_run


def observed_ranges(run_dir: Path, env, episodes: int = 50, seed: int = 123):
    """Per-feature min/max of observations and goals seen in training.

    Read from the run's replay buffer (latest checkpoint); when absent, from random-action
    rollouts over the training dynamics.
    """
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        _, ng, _ = load_checkpoint(ckpt)
        rep = ng.get("replay")
        if rep is not None and len(rep["obs"]):
            obs = rep["obs"].reshape(-1, rep["obs"].shape[-1])
            g_dim = rep["desired_goal"].shape[-1]
            goal = np.concatenate([rep["desired_goal"].reshape(-1, g_dim),
                                   rep["achieved_goal"].reshape(-1, g_dim)])
            return obs.min(0), obs.max(0), goal.min(0), goal.max(0)
    rng = np.random.default_rng(seed)
    obs_l, goal_l = [], []
    for ep in range(episodes):
        o, _ = env.reset(seed=seed + ep)
        for _ in range(env.max_episode_steps):
            o, *_ = env.step(rng.uniform(-env.max_offset, env.max_offset).astype(np.float32))
            obs_l.append(o["observation"])
            goal_l += [o["desired_goal"], o["achieved_goal"]]
    obs, goal = np.array(obs_l), np.array(goal_l)
    return obs.min(0), obs.max(0), goal.min(0), goal.max(0)


def export_run_policy(run_dir, out, which: str = "best") -> Path:
    """Export the actor of a run to ``out`` (.onnx + .json sidecar)."""
    run_dir = Path(run_dir)
    actor, run = load_actor_from_run(run_dir, which)
    if run.variant == "ff_history":
        raise CheckpointError("frame-stacked (ff_history) policies are for the Table II study and "
                              "are not exported for deployment")
    env = make_contract_env(run.env_id, run.env_kwargs)
    obs_lo, obs_hi, goal_lo, goal_hi = observed_ranges(run_dir, env)
    scale = actor.action_scale.cpu().numpy()
    meta = ModelMetadata(
        kind="policy", obs_dim=actor.obs_dim, goal_dim=actor.goal_dim, act_dim=actor.act_dim,
        action_low=(-scale).tolist(), action_high=scale.tolist(),
        obs_low=obs_lo.tolist(), obs_high=obs_hi.tolist(),
        goal_low=goal_lo.tolist(), goal_high=goal_hi.tolist(),
        training_config=run.config, **contract_fields(env),
    )
    env.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return export_policy(actor, out, meta)
