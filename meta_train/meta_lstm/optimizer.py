"""The Meta-LSTM learned optimiser (Ravi & Larochelle 2017, "Optimization as a Model for
Few-Shot Learning").

A gradient step ``theta_t = theta_(t-1) - alpha_t * grad_t`` has the form of an LSTM's cell
update ``c_t = f_t * c_(t-1) + i_t * c~_t`` with ``c_t = theta_t`` and ``c~_t = -grad_t``. The
input gate is a learned, adaptive step size and the forget gate a learned shrinkage of the
parameters::

    i_t = sigmoid(W_I . [h_t, theta_(t-1), i_(t-1)] + b_I)
    f_t = sigmoid(W_F . [h_t, theta_(t-1), f_(t-1)] + b_F)
    c_t = f_t * c_(t-1) - i_t * grad_t

``h_t`` is the output of a first, ordinary LSTM that reads the preprocessed gradient and loss
(log-magnitude and sign, Andrychowicz et al. 2016). Both are applied coordinate-wise: one
small network shared by every parameter of the learner, each coordinate with its own state.
The learner's initial parameters ``c_0`` are meta-learned too. The forget-gate bias starts in
[4, 6] and the input-gate bias in [-5, -4], so that at initialisation ``f ~ 1`` and
``i ~ 0.01``: close to plain gradient descent with a small step. The learner's gradients and
losses enter as constants (no second derivatives), as in the paper.

Parameters are batched over tasks: ``theta`` is ``[B, P]`` (``P`` the learner's size).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def preprocess(x: torch.Tensor, p: float = 10.0) -> torch.Tensor:
    """``[..., 1] -> [..., 2]``: ``(log|x| / p, sign x)`` where ``|x| >= e^-p``, else
    ``(-1, e^p x)`` (Andrychowicz et al. 2016, appendix A): the scale and the sign of
    gradients that span many orders of magnitude, in a range a network reads well."""
    big = x.abs() >= math.exp(-p)
    first = torch.where(big, torch.log(x.abs().clamp_min(1e-38)) / p, torch.full_like(x, -1.0))
    second = torch.where(big, torch.sign(x), x * math.exp(p))
    return torch.cat([first, second], dim=-1)


class MetaLSTMCell(nn.Module):
    """The second layer: gates from ``[h, theta, previous gate]``; the cell state is the
    learner's parameters.

    Args:
        input_size: size of ``h`` (the first layer's hidden size).
        forget_bias: range of the forget gate's initial bias (high: keep the parameters).
        input_bias: range of the input gate's initial bias (low: a small step).
    """

    def __init__(self, input_size: int, forget_bias: tuple[float, float] = (4.0, 6.0),
                 input_bias: tuple[float, float] = (-5.0, -4.0)) -> None:
        super().__init__()
        self.w_f = nn.Parameter(torch.empty(input_size + 2, 1).uniform_(-0.01, 0.01))
        self.w_i = nn.Parameter(torch.empty(input_size + 2, 1).uniform_(-0.01, 0.01))
        self.b_f = nn.Parameter(torch.empty(1).uniform_(*forget_bias))
        self.b_i = nn.Parameter(torch.empty(1).uniform_(*input_bias))

    def forward(self, h: torch.Tensor, grad: torch.Tensor, theta: torch.Tensor,
                f_prev: torch.Tensor, i_prev: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h [n, H]``, ``grad``, ``theta``, gates ``[n, 1]`` -> ``(theta_t, f_t, i_t)``."""
        f = torch.sigmoid(torch.cat([h, theta, f_prev], dim=-1) @ self.w_f + self.b_f)
        i = torch.sigmoid(torch.cat([h, theta, i_prev], dim=-1) @ self.w_i + self.b_i)
        return f * theta - i * grad, f, i


class MetaLSTMOptimizer(nn.Module):
    """The meta-learner: learned initial parameters ``c_0`` and the two coordinate-wise layers.

    Args:
        init: the learner's initial parameter vector ``[P]`` (meta-learned from there).
        hidden: the first LSTM's hidden size (20 in the paper).
        forget_bias, input_bias: initial gate-bias ranges (see :class:`MetaLSTMCell`).
        learn_init: meta-learn ``c_0`` (else it stays at ``init``).
    """

    def __init__(self, init: torch.Tensor, hidden: int = 20,
                 forget_bias: tuple[float, float] = (4.0, 6.0),
                 input_bias: tuple[float, float] = (-5.0, -4.0), learn_init: bool = True) -> None:
        super().__init__()
        self.hidden = hidden
        self.c0 = nn.Parameter(init.detach().clone().reshape(-1), requires_grad=learn_init)
        self.lstm = nn.LSTMCell(4, hidden)
        self.cell = MetaLSTMCell(hidden, forget_bias, input_bias)

    @property
    def n_params(self) -> int:
        return self.c0.numel()

    def initial(self, tasks: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``(theta_0 [tasks, P], state)``: the learned initialisation for every task and a
        zero recurrent state (first layer ``h, c``; the previous gates)."""
        n = tasks * self.n_params
        z = self.c0.new_zeros
        return (self.c0.expand(tasks, -1),
                (z(n, self.hidden), z(n, self.hidden), z(n, 1), z(n, 1)))

    def step(self, theta: torch.Tensor, state: tuple[torch.Tensor, ...], loss: torch.Tensor,
             grad: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One update of ``theta [B, P]`` from each task's ``loss [B]`` and ``grad [B, P]``
        (both taken as constants)."""
        b, p = theta.shape
        g = grad.detach().reshape(-1, 1)
        loss_in = loss.detach().reshape(b, 1).expand(b, p).reshape(-1, 1)
        h, c, f_prev, i_prev = state
        h, c = self.lstm(torch.cat([preprocess(loss_in), preprocess(g)], dim=-1), (h, c))
        new, f, i = self.cell(h, g, theta.reshape(-1, 1), f_prev, i_prev)
        return new.reshape(b, p), (h, c, f, i)
