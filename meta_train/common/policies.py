"""Acting with a trained actor: one env step at a time, with its recurrent state or history.

Shared by the trainer's rollouts, evaluation and estimator data collection, so the three feed
the actor exactly as training did.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def stack_history(obs: torch.Tensor, prev_action: torch.Tensor, k: int) -> torch.Tensor:
    """Per step, the last ``k`` (observation, previous action) pairs, newest first.

    ``obs [B, L, o]``, ``prev_action [B, L, a]`` -> ``[B, L, k * (o + a)]``; steps before the
    start of the sequence are zeros (the episode start), in training and in rollouts alike.
    """
    x = torch.cat([obs, prev_action], dim=-1)
    b, length, d = x.shape
    xp = torch.cat([x.new_zeros(b, k - 1, d), x], dim=1)
    return torch.cat([xp[:, k - 1 - j : k - 1 - j + length] for j in range(k)], dim=-1)


def actor_input(
    variant: str, history: int, obs: torch.Tensor, prev_action: torch.Tensor
) -> torch.Tensor:
    """What the actor's ``obs`` argument is for a variant (stacked for ff_history)."""
    if variant == "ff_history":
        return stack_history(obs, prev_action, history)
    return obs


class BatchPolicy:
    """Step a batch of ``n`` envs with an actor, keeping per-env recurrent state or history.

    Args:
        actor: a RecurrentActor or FeedforwardActor.
        variant: the trainer variant (decides the actor input).
        history: frames for ff_history.
        n: number of envs.
        device: torch device of the actor.
    """

    def __init__(self, actor: nn.Module, variant: str, history: int, n: int, device) -> None:
        self.actor, self.variant, self.history, self.n = actor, variant, history, n
        self.device = torch.device(device)
        self.act_dim = actor.act_dim
        self.reset()

    def reset(self) -> None:
        """Start of an episode for every env."""
        self.state = self.actor.initial_state(self.n, self.device)
        self.prev_action = np.zeros((self.n, self.act_dim), np.float32)
        self._obs_hist: list[np.ndarray] = []
        self._act_hist: list[np.ndarray] = []

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Deterministic actions ``[n, act_dim]`` for observations ``[n, o]`` and goals."""
        t = lambda x: torch.as_tensor(x, dtype=torch.float32, device=self.device)  # noqa: E731
        if self.variant == "ff_history":
            self._obs_hist = (self._obs_hist + [obs])[-self.history :]
            self._act_hist = (self._act_hist + [self.prev_action])[-self.history :]
            o = stack_history(t(np.stack(self._obs_hist, 1)), t(np.stack(self._act_hist, 1)),
                              self.history)[:, -1:]
        else:
            o = t(obs)[:, None]
        action, self.state = self.actor(o, t(goal)[:, None], t(self.prev_action)[:, None],
                                        self.state)
        a = action[:, 0].cpu().numpy()
        return a

    def observe_action(self, action: np.ndarray) -> None:
        """Record the action actually sent (after noise), the next step's ``a_{t-1}``."""
        self.prev_action = np.asarray(action, np.float32).reshape(self.n, self.act_dim)
