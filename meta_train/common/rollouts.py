"""Rollout datasets: whole episodes of a trained policy over randomized dynamics, with ``mu``.

What several methods learn from: the dynamics estimator regresses ``mu`` from the history,
forward models predict the next state from the state and the action. A dataset holds, per
episode, the observations, the executed actions (the policy's, plus exploration noise), the
goals, the normalised dynamics ``mu`` the env sampled and the reset seed, so any episode can be
replayed. Datasets are saved as one ``.npz`` (written atomically) with their provenance.

    actor, run = load_actor_from_run("runs/<run>", "final")
    data = collect_rollouts(actor, run, "train", episodes=600, seed=1, noise_std=0.1)
    data.save("data/pusher_train.npz")
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from meta_train.common.evaluation import make_eval_env
from meta_train.common.policies import BatchPolicy, PolicyRun


class DatasetError(ValueError):
    """A rollout dataset file is missing, unreadable or inconsistent."""


@dataclass
class RolloutDataset:
    """``N`` episodes of ``T`` steps (float32 arrays, batch first).

    Attributes:
        obs: ``[N, T+1, obs_dim]`` observations (the last after the final action).
        action: ``[N, T, act_dim]`` executed actions.
        desired_goal: ``[N, goal_dim]`` the episode's goal.
        achieved_goal: ``[N, T+1, goal_dim]``.
        mu: ``[N, mu_dim]`` normalised dynamics (training ranges -> [-1, 1]).
        reset_seed: ``[N]`` the env's reset seed of each episode.
        info: provenance: env id and kwargs, dynamics setting, noise, policy checkpoint,
            ``mu_names``.
    """

    obs: np.ndarray
    action: np.ndarray
    desired_goal: np.ndarray
    achieved_goal: np.ndarray
    mu: np.ndarray
    reset_seed: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    _ARRAYS = ("obs", "action", "desired_goal", "achieved_goal", "mu", "reset_seed")

    def __post_init__(self) -> None:
        n, t = self.action.shape[:2]
        expect = {"obs": (n, t + 1), "desired_goal": (n,), "achieved_goal": (n, t + 1),
                  "mu": (n,), "reset_seed": (n,)}
        for name, lead in expect.items():
            shape = getattr(self, name).shape
            if shape[: len(lead)] != lead:
                raise DatasetError(f"{name} has shape {shape}, expected {lead} first")

    def __len__(self) -> int:
        return self.action.shape[0]

    @property
    def horizon(self) -> int:
        """Steps per episode ``T``."""
        return self.action.shape[1]

    @property
    def prev_action(self) -> np.ndarray:
        """``[N, T+1, act_dim]``: the action before each observation (zeros at the start)."""
        return np.concatenate([np.zeros_like(self.action[:, :1]), self.action], axis=1)

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(state [N, T, o], action [N, T, a], next_state [N, T, o])`` for forward models."""
        return self.obs[:, :-1], self.action, self.obs[:, 1:]

    def subset(self, index: Sequence[int] | np.ndarray) -> RolloutDataset:
        """The episodes at ``index``, same provenance."""
        idx = np.asarray(index)
        return RolloutDataset(*(getattr(self, a)[idx] for a in self._ARRAYS),
                              info=dict(self.info))

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.npz``) atomically: a temporary file in the same folder, then
        ``os.replace``; a killed write leaves any earlier file whole."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **{a: getattr(self, a) for a in self._ARRAYS},
                         info=np.array(json.dumps(self.info)))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> RolloutDataset:
        """Read a dataset written by :meth:`save`.

        Raises:
            DatasetError: the file is missing, not a dataset, or inconsistent.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {a: z[a] for a in cls._ARRAYS}
                info = json.loads(str(z["info"]))
        except FileNotFoundError:
            raise DatasetError(f"{path}: no such dataset") from None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise DatasetError(f"{path}: not a rollout dataset ({e})") from None
        return cls(**arrays, info=info)


def collect_rollouts(actor: nn.Module, run: PolicyRun, dynamics: str, episodes: int, seed: int,
                     noise_std: float, env_kwargs: dict[str, Any] | None = None,
                     fixed: Sequence[str] = ()) -> RolloutDataset:
    """Roll out a trained policy with Gaussian exploration noise.

    Args:
        actor: the policy's actor (CPU), e.g. from
            :func:`~meta_train.common.policies.load_actor_from_run`.
        run: its provenance (env id and kwargs, variant).
        dynamics: ``train``, ``heldout`` or ``nominal`` (see
            :func:`~meta_train.common.evaluation.make_eval_env`).
        episodes: number of episodes; episode ``i`` resets with seed ``seed + i``.
        seed: first reset seed, also the seed of the exploration noise.
        noise_std: std of the noise added to each action, as a fraction of the action bound
            (the sum is clipped to the bound).
        env_kwargs: overrides of the run's env kwargs (e.g. ``episode_steps``).
        fixed: dynamics parameters or groups held at nominal.
    """
    kwargs = {**run.env_kwargs, **(env_kwargs or {})}
    env = make_eval_env(run.env_id, kwargs, dynamics, fixed)
    try:
        horizon = env.max_episode_steps
        pol = BatchPolicy(actor, run.variant, run.history, 1, "cpu")
        rng = np.random.default_rng(seed)
        scale = env.action_space.high
        n_o, n_a = env.observation_space["observation"].shape[0], env.action_space.shape[0]
        n_g = env.observation_space["desired_goal"].shape[0]
        obs = np.zeros((episodes, horizon + 1, n_o), np.float32)
        act = np.zeros((episodes, horizon, n_a), np.float32)
        ag = np.zeros((episodes, horizon + 1, n_g), np.float32)
        dg = np.zeros((episodes, n_g), np.float32)
        mus = np.zeros((episodes, env.dynamics_space.dim), np.float32)
        for ep in range(episodes):
            o, info = env.reset(seed=seed + ep)
            pol.reset()
            mus[ep] = info["mu"]
            obs[ep, 0], ag[ep, 0], dg[ep] = o["observation"], o["achieved_goal"], o["desired_goal"]
            for t in range(horizon):
                a = pol(o["observation"][None], o["desired_goal"][None])[0]
                a = np.clip(a + rng.normal(0, noise_std, a.shape) * scale, -scale, scale)
                pol.observe_action(a[None])
                o, *_ = env.step(a.astype(np.float32))
                obs[ep, t + 1], ag[ep, t + 1] = o["observation"], o["achieved_goal"]
                act[ep, t] = a
        info = {"env_id": run.env_id, "env_kwargs": kwargs, "dynamics": dynamics,
                "fixed": list(fixed), "noise_std": noise_std, "seed": seed,
                "policy_checkpoint": str(run.checkpoint), "mu_names": list(env._train_space.names)}
    finally:
        env.close()
    return RolloutDataset(obs, act, dg, ag, mus, np.arange(seed, seed + episodes), info)
