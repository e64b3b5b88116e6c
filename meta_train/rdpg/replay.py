"""Episode replay with Hindsight Experience Replay as a buffer plug-in.

Recurrent policies train by back-propagation through time, so the buffer stores *whole episodes*
(RDPG, Heess et al. 2015) with the dynamics ``mu`` they were collected under (the omniscient
critic's input). HER (Andrychowicz et al. 2017) is applied when a batch is sampled: each
transition's goal is replaced, with probability ``k / (k + 1)``, by a goal achieved later in the
same episode ('future'), at its end ('final') or anywhere in it ('episode'); rewards are then
recomputed with the env's vectorised ``compute_reward``, as Stable-Baselines3's HerReplayBuffer
does. The goal enters only the feedforward branches of the actor and critic (Peng et al.), so
per-step relabelling leaves the recurrent states valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

HER_STRATEGIES = ("future", "final", "episode", "none")


class EpisodeBatch(NamedTuple):
    """A batch of ``B`` episodes of ``T`` steps (numpy, float32).

    ``obs`` and ``achieved_goal`` have ``T + 1`` entries (the last is the state after the final
    action); ``prev_action[:, t]`` is ``a_{t-1}`` (zeros at ``t = 0``).
    """

    obs: np.ndarray  # [B, T+1, obs_dim]
    action: np.ndarray  # [B, T, act_dim]
    prev_action: np.ndarray  # [B, T+1, act_dim]
    goal: np.ndarray  # [B, T, goal_dim] (relabelled)
    reward: np.ndarray  # [B, T]
    mu: np.ndarray  # [B, mu_dim]
    achieved_goal: np.ndarray  # [B, T+1, goal_dim]
    expert_action: np.ndarray | None = None  # [B, T, act_dim] (labelled batches only)


class EpisodeReplay:
    """Fixed-capacity ring buffer of equal-length episodes, with HER relabelling at sampling.

    Args:
        capacity: number of episodes kept (oldest overwritten).
        horizon: steps per episode ``T``.
        obs_dim, act_dim, goal_dim, mu_dim: sizes (``mu_dim`` may be 0).
        compute_reward: the env's vectorised ``compute_reward(achieved, desired, info)``.
        her_strategy: ``future``, ``final``, ``episode`` or ``none``.
        her_k: relabelled goals per real goal; relabel probability is ``k / (k + 1)``
            (k = 4 -> 0.8, Andrychowicz et al.).
        moved_fraction: share of each batch drawn from episodes whose achieved goal moved
            (by more than ``moved_threshold``), when there are such episodes. In object tasks
            the object rarely moves under random exploration; relabelled goals of the other
            episodes all say "leave the object where it is", which teaches the policy to stay
            away from it. Favouring episodes with object motion is the idea of energy-based
            prioritisation (Zhao & Tresp 2018) in its simplest form. 0 disables it.
        moved_threshold: achieved-goal displacement (start to end, goal units) that counts as
            motion.
    """

    def __init__(
        self,
        capacity: int,
        horizon: int,
        obs_dim: int,
        act_dim: int,
        goal_dim: int,
        mu_dim: int,
        compute_reward: Callable[[np.ndarray, np.ndarray, object], np.ndarray],
        her_strategy: str = "future",
        her_k: int = 4,
        moved_fraction: float = 0.0,
        moved_threshold: float = 0.01,
    ) -> None:
        if her_strategy not in HER_STRATEGIES:
            raise ValueError(f"her_strategy must be one of {HER_STRATEGIES}, got {her_strategy!r}")
        if capacity < 1 or horizon < 1 or her_k < 0:
            raise ValueError("capacity and horizon must be >= 1 and her_k >= 0")
        if not 0.0 <= moved_fraction <= 1.0:
            raise ValueError(f"moved_fraction must be in [0, 1], got {moved_fraction}")
        self.moved_fraction, self.moved_threshold = moved_fraction, moved_threshold
        self.capacity, self.horizon = capacity, horizon
        self.compute_reward = compute_reward
        self.her_strategy, self.her_k = her_strategy, her_k
        t = horizon
        self.obs = np.zeros((capacity, t + 1, obs_dim), np.float32)
        self.action = np.zeros((capacity, t, act_dim), np.float32)
        self.achieved_goal = np.zeros((capacity, t + 1, goal_dim), np.float32)
        self.desired_goal = np.zeros((capacity, t, goal_dim), np.float32)
        self.mu = np.zeros((capacity, mu_dim), np.float32)
        self.moved = np.zeros(capacity, bool)
        self.demo = np.zeros(capacity, bool)
        self.expert_action = np.zeros((capacity, t, act_dim), np.float32)
        self.labelled = np.zeros(capacity, bool)
        self.expert_informed = np.ones((capacity, t), bool)
        self.size = 0
        self.next = 0

    @property
    def relabel_probability(self) -> float:
        if self.her_strategy == "none":
            return 0.0
        return self.her_k / (self.her_k + 1.0)

    def add(self, obs, action, achieved_goal, desired_goal, mu, demo: bool = False,
            expert_action=None, expert_informed=None) -> None:
        """Store one episode: ``obs [T+1, .]``, ``action [T, .]``, ``achieved_goal [T+1, .]``,
        ``desired_goal [T, .]``, ``mu [mu_dim]``; ``demo`` marks a demonstration,
        ``expert_action [T, .]`` is the expert's label of each visited state (or None) and
        ``expert_informed [T]`` whether each label was given knowing the true dynamics
        (default: all; kept with the episode and in checkpoints, e.g. to find the steps after
        the dynamics showed, though no loss reads it)."""
        i = self.next
        self.demo[i] = demo
        self.labelled[i] = expert_action is not None
        if expert_action is not None:
            self.expert_action[i] = expert_action
        self.expert_informed[i] = True if expert_informed is None else expert_informed
        self.obs[i] = obs
        self.action[i] = action
        self.achieved_goal[i] = achieved_goal
        self.desired_goal[i] = desired_goal
        self.mu[i] = mu
        disp = np.linalg.norm(np.asarray(achieved_goal[-1]) - np.asarray(achieved_goal[0]))
        self.moved[i] = disp > self.moved_threshold
        self.next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def relabel(
        self, idx: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Goals and rewards for episodes ``idx`` after HER relabelling ([B, T, g], [B, T])."""
        b, t = len(idx), self.horizon
        goal = self.desired_goal[idx].copy()
        ag = self.achieved_goal[idx]
        if self.her_strategy != "none":
            steps = np.arange(t)[None, :].repeat(b, 0)
            if self.her_strategy == "future":
                # a goal achieved after this transition: achieved_goal[t'] with t' in (t, T]
                src = steps + 1 + (rng.random((b, t)) * (t - steps)).astype(np.int64)
            elif self.her_strategy == "final":
                src = np.full((b, t), t)
            else:  # episode
                src = rng.integers(1, t + 1, size=(b, t))
            mask = rng.random((b, t)) < self.relabel_probability
            rows = np.arange(b)[:, None].repeat(t, 1)
            goal[mask] = ag[rows[mask], src[mask]]
        reward = self.compute_reward(ag[:, 1:], goal, None).astype(np.float32)
        return goal, reward

    @property
    def n_demos(self) -> int:
        """Demonstration episodes currently held."""
        return int(self.demo[: self.size].sum())

    def sample(self, batch_size: int, rng: np.random.Generator) -> EpisodeBatch:
        """Sample ``batch_size`` episodes (with replacement) and relabel their goals."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        if self.moved_fraction > 0:
            moved = np.flatnonzero(self.moved[: self.size])
            if len(moved):
                k = int(round(self.moved_fraction * batch_size))
                idx[:k] = moved[rng.integers(0, len(moved), size=k)]
        goal, reward = self.relabel(idx, rng)
        return self._batch(idx, goal, reward)

    def sample_demos(self, batch_size: int, rng: np.random.Generator) -> EpisodeBatch:
        """Demonstration episodes with their original goals (for a behaviour-cloning loss)."""
        idx = self._sample_marked(self.demo, "demonstrations", batch_size, rng)
        return self._original_goal_batch(idx)

    @property
    def n_labelled(self) -> int:
        """Episodes currently held whose states carry expert action labels."""
        return int(self.labelled[: self.size].sum())

    def sample_labelled(self, batch_size: int, rng: np.random.Generator) -> EpisodeBatch:
        """Expert-labelled episodes with their original goals and ``expert_action`` (DAgger)."""
        idx = self._sample_marked(self.labelled, "expert-labelled episodes", batch_size, rng)
        return self._original_goal_batch(idx, self.expert_action[idx])

    def _sample_marked(self, mark: np.ndarray, what: str, batch_size: int,
                       rng: np.random.Generator) -> np.ndarray:
        """Indices of ``batch_size`` episodes drawn (with replacement) among the marked ones."""
        marked = np.flatnonzero(mark[: self.size])
        if not len(marked):
            raise RuntimeError(f"the replay buffer holds no {what}")
        return marked[rng.integers(0, len(marked), size=batch_size)]

    def _original_goal_batch(self, idx: np.ndarray,
                             expert_action: np.ndarray | None = None) -> EpisodeBatch:
        goal = self.desired_goal[idx]
        reward = self.compute_reward(self.achieved_goal[idx][:, 1:], goal, None)
        return self._batch(idx, goal, reward.astype(np.float32), expert_action)

    def _batch(self, idx: np.ndarray, goal: np.ndarray, reward: np.ndarray,
               expert_action: np.ndarray | None = None) -> EpisodeBatch:
        action = self.action[idx]
        prev = np.concatenate([np.zeros_like(action[:, :1]), action], axis=1)
        return EpisodeBatch(
            obs=self.obs[idx], action=action, prev_action=prev, goal=goal, reward=reward,
            mu=self.mu[idx], achieved_goal=self.achieved_goal[idx], expert_action=expert_action,
        )

    # --- persistence (checkpoint/resume) ------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "obs": self.obs[: self.size], "action": self.action[: self.size],
            "achieved_goal": self.achieved_goal[: self.size],
            "desired_goal": self.desired_goal[: self.size], "mu": self.mu[: self.size],
            "demo": self.demo[: self.size].astype(np.uint8),
            "labelled": self.labelled[: self.size].astype(np.uint8),
            "expert_action": self.expert_action[: self.size],
            "expert_informed": self.expert_informed[: self.size].astype(np.uint8),
            "counters": np.array([self.size, self.next], np.int64),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        size, nxt = (int(v) for v in state["counters"])
        if size > self.capacity:
            raise ValueError(f"checkpoint buffer holds {size} episodes > capacity {self.capacity}")
        for name in ("obs", "action", "achieved_goal", "desired_goal", "mu"):
            arr = getattr(self, name)
            if state[name].shape[1:] != arr.shape[1:]:
                raise ValueError(
                    f"checkpoint buffer field {name!r} has shape {state[name].shape[1:]}, "
                    f"expected {arr.shape[1:]}"
                )
            arr[:size] = state[name]
        self.demo[:] = False
        if "demo" in state:  # absent in checkpoints from before demonstrations were marked
            self.demo[:size] = state["demo"].astype(bool)
        self.labelled[:] = False
        if "labelled" in state:  # absent in checkpoints from before expert labels
            if state["expert_action"].shape[1:] != self.expert_action.shape[1:]:
                raise ValueError(
                    f"checkpoint buffer field 'expert_action' has shape "
                    f"{state['expert_action'].shape[1:]}, expected {self.expert_action.shape[1:]}"
                )
            self.labelled[:size] = state["labelled"].astype(bool)
            self.expert_action[:size] = state["expert_action"]
        self.expert_informed[:] = True  # absent in checkpoints from before the flag: all
        if "expert_informed" in state:
            self.expert_informed[:size] = state["expert_informed"].astype(bool)
        self.size, self.next = size, nxt
        ag = self.achieved_goal[:size]
        self.moved[:size] = np.linalg.norm(ag[:, -1] - ag[:, 0], axis=-1) > self.moved_threshold
