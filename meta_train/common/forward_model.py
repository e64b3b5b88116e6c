"""Forward models: predict the next observation from the observation and the action.

The building block of model-based adaptation (GrBAL/ReBAL, Nagabandi et al. 2019: adapt the
model to the last M transitions, then predict) and of out-of-distribution checks that score
how well a model trained on the training dynamics explains the transitions observed (a large
error says the robot is not the one it was trained for).

:class:`ForwardModel` is an MLP over normalised inputs that predicts the normalised change of
the observation, ``s_{t+1} = s_t + denorm(f(norm(s_t), a_t / scale, context))``: changes are
small and similar in scale across terms, so one loss weighs them alike. An optional
``context`` input (e.g. the true dynamics, for an oracle, or a latent from a recurrent encoder)
conditions the prediction. It is a plain :class:`torch.nn.Module`, so
:func:`torch.func.functional_call` and gradient-based adaptation apply to it as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from meta_train.common.networks import RunningNorm, _scale_tensor


class ForwardModel(nn.Module):
    """``(obs [.., o], action [.., a], context [.., c]) -> predicted next obs [.., o]``.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        hidden: width of the hidden layers.
        layers: number of hidden layers (Linear -> ReLU each).
        context_dim: size of the optional conditioning input (0: none).
        action_scale: actions are divided by this before entering the network.
    """

    action_scale: torch.Tensor

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 128, layers: int = 2,
                 context_dim: int = 0, action_scale: Sequence[float] | float = 1.0) -> None:
        super().__init__()
        if min(obs_dim, act_dim, hidden, layers) < 1 or context_dim < 0:
            raise ValueError("obs_dim, act_dim, hidden and layers must be >= 1, "
                             "context_dim >= 0")
        self.obs_dim, self.act_dim, self.context_dim = obs_dim, act_dim, context_dim
        self.obs_norm = RunningNorm(obs_dim)
        self.delta_norm = RunningNorm(obs_dim)
        self.register_buffer("action_scale", _scale_tensor(action_scale, act_dim))
        mods: list[nn.Module] = []
        width = obs_dim + act_dim + context_dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, obs_dim))
        self.net = nn.Sequential(*mods)

    @torch.no_grad()
    def update_normalizers(self, obs: torch.Tensor, next_obs: torch.Tensor) -> None:
        """Merge a batch of transitions into the input and output statistics."""
        self.obs_norm.update(obs)
        self.delta_norm.update(next_obs - obs)

    def _delta_std(self) -> torch.Tensor:
        return torch.sqrt(self.delta_norm.var + self.delta_norm.eps)

    def predict_delta(self, obs: torch.Tensor, action: torch.Tensor,
                      context: torch.Tensor | None = None) -> torch.Tensor:
        """The normalised change of the observation (the network's raw output)."""
        parts = [self.obs_norm(obs), action / self.action_scale]
        if self.context_dim:
            if context is None or context.shape[-1] != self.context_dim:
                raise ValueError(f"this model needs a context of size {self.context_dim}")
            parts.append(context)
        elif context is not None:
            raise ValueError("this model takes no context (context_dim is 0)")
        return self.net(torch.cat(parts, dim=-1))

    def forward(self, obs: torch.Tensor, action: torch.Tensor,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted next observation."""
        delta = self.predict_delta(obs, action, context)
        return obs + self.delta_norm.mean + delta * self._delta_std()

    def loss(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor,
             context: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared error of the normalised change (what training minimises)."""
        target = (next_obs - obs - self.delta_norm.mean) / self._delta_std()
        return (self.predict_delta(obs, action, context) - target).square().mean()
