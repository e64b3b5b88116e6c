"""ReBAL's recurrent dynamics model (Nagabandi, Clavera et al. 2019).

An LSTM reads the ``M`` most recent transitions (normalised observation, scaled action,
normalised change) and its final state conditions a forward model's prediction of the next
``K`` -- adaptation by the recurrent state rather than by gradient steps, the mechanism of the
project's dynamics estimator. Trained on windows of the training episodes, ``M`` drawn per
batch as for the meta-learners.
"""

from __future__ import annotations

import torch
from torch import nn

from meta_train.common.forward_model import ForwardModel


class RecurrentDynamics(nn.Module):
    """``(support obs, action, next obs [B, M, .]; query obs, action [B, K, .]) -> [B, K, o]``.

    Args:
        model: a :class:`ForwardModel` with ``context_dim == hidden`` (normalisers fitted).
        hidden: the encoder's width.
    """

    def __init__(self, model: ForwardModel, hidden: int) -> None:
        super().__init__()
        if model.context_dim != hidden:
            raise ValueError("the forward model's context_dim must equal hidden")
        self.model = model
        self.encoder = nn.LSTM(2 * model.obs_dim + model.act_dim, hidden, batch_first=True)

    def encode(self, obs: torch.Tensor, action: torch.Tensor,
               next_obs: torch.Tensor) -> torch.Tensor:
        """``[B, hidden]``: the state after the history."""
        m = self.model
        x = torch.cat([m.obs_norm(obs), action / m.action_scale, m.delta_norm(next_obs - obs)],
                      dim=-1)
        _, (h, _) = self.encoder(x)
        return h[-1]

    def forward(self, s_obs: torch.Tensor, s_action: torch.Tensor, s_next: torch.Tensor,
                q_obs: torch.Tensor, q_action: torch.Tensor) -> torch.Tensor:
        z = self.encode(s_obs, s_action, s_next)
        return self.model(q_obs, q_action, z[:, None].expand(-1, q_obs.shape[1], -1))
