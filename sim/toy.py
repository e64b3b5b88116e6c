"""A toy goal env in the spirit of HER's bit-flipping example, with continuous actions.

A point in ``[-1, 1]^n`` moves by the action (at most ``max_step`` per axis and step) and must end
within ``threshold`` of a goal drawn uniformly in the same cube. With ``n = 4`` the chance that
random exploration ever meets a goal is tiny, so the sparse reward carries no signal: learning
fails without HER and succeeds with it (Andrychowicz et al. 2017, Sec. 3.1). Tests use it to check
that the trainer's HER path really works. ``import sim`` registers it as ``PointGoal-v0`` (not in
:data:`sim.ENV_IDS`, the push sims).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class PointGoalEnv(gym.Env):
    """``n``-D point reaching with a sparse reward; fixed horizon, no termination."""

    metadata = {"render_modes": []}

    def __init__(self, n_dims: int = 4, horizon: int = 20, max_step: float = 0.2,
                 threshold: float = 0.1) -> None:
        if n_dims < 1 or horizon < 1 or max_step <= 0 or threshold <= 0:
            raise ValueError("n_dims, horizon, max_step and threshold must be positive")
        self.n, self.max_episode_steps = n_dims, horizon
        self.threshold = threshold
        box = spaces.Box(-1.0, 1.0, shape=(n_dims,), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {"observation": box, "achieved_goal": box, "desired_goal": box}
        )
        self.action_space = spaces.Box(-max_step, max_step, shape=(n_dims,), dtype=np.float32)
        self._pos = np.zeros(n_dims, np.float32)
        self._goal = np.zeros(n_dims, np.float32)
        self._t = 0

    def _obs(self):
        return {"observation": self._pos.copy(), "achieved_goal": self._pos.copy(),
                "desired_goal": self._goal.copy()}

    def _info(self):
        d = float(np.linalg.norm(self._pos - self._goal))
        return {"is_success": d < self.threshold, "distance": d}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1, 1, self.n).astype(np.float32)
        self._goal = self.np_random.uniform(-1, 1, self.n).astype(np.float32)
        self._t = 0
        return self._obs(), self._info()

    def step(self, action):
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (self.n,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be {self.n} finite values, got {a!r}")
        a = np.clip(a, self.action_space.low, self.action_space.high)
        self._pos = np.clip(self._pos + a, -1.0, 1.0).astype(np.float32)
        self._t += 1
        obs = self._obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None))
        return obs, reward, False, self._t >= self.max_episode_steps, self._info()

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        """Vectorised: 0 within ``threshold`` of the goal, else -1."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(d >= self.threshold).astype(np.float32)
