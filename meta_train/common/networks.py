"""Actor, critic and dynamics-estimator networks for meta-learned, dynamics-adaptive control.

The layout follows Peng et al. 2017, "Sim-to-Real Transfer of Robotic Control with Dynamics
Randomization" (arXiv:1710.06537): the policy ``pi(a_t | s_t, g, h_t)`` has a recurrent branch fed
with the current observation and the previous action, whose LSTM state ``h_t`` implicitly
identifies the dynamics, and a feedforward branch fed with the observation and the goal; the two
are concatenated and passed through fully connected layers. The critic is *omniscient*: on top of
the policy's inputs it sees the action ``a_t`` and the true (normalised) dynamics parameters
``mu`` that the simulator sampled, which only exist at training time.

:class:`DynamicsEstimator` is the explicit alternative to implicit identification (UP-OSI, Yu et
al. 2017, arXiv:1702.02453; RMA, Kumar et al. 2021, arXiv:2107.04034): a recurrent network that
regresses the normalised ``mu`` from the history and reports a Gaussian variance, so that the
deployed controller can tell when the robot is outside the training distribution.

Conventions shared by every module here:

* Tensors are time-major-free ``[B, T, dim]`` (batch first). Feedforward modules also accept
  ``[B, dim]`` since every layer acts on the last axis.
* Observations and goals are normalised *inside* the module by :class:`RunningNorm`, so that
  exporting the module exports the normalisation with it.
* Actions (``a_t`` and ``a_{t-1}``) enter networks divided by ``action_scale`` so that every
  input is roughly unit-scale.
* Recurrent state is a tuple ``(h, c)`` each ``[1, B, hidden]`` (one LSTM layer).
* Nothing is tied to a device: parameters and buffers move with ``.to(device)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "DynamicsEstimator",
    "FeedforwardActor",
    "FeedforwardCritic",
    "LstmState",
    "RecurrentActor",
    "RecurrentCritic",
    "RunningNorm",
    "gaussian_nll",
]

LstmState = tuple[torch.Tensor, torch.Tensor]
"""LSTM state ``(h, c)``, each ``[num_layers=1, B, hidden]``."""


def _scale_tensor(action_scale: Sequence[float] | float, act_dim: int) -> torch.Tensor:
    """Return ``action_scale`` as a float32 ``[act_dim]`` tensor of strictly positive values."""
    scale = torch.as_tensor(action_scale, dtype=torch.float32).flatten()
    if scale.numel() == 1:
        scale = scale.expand(act_dim).clone()
    if scale.numel() != act_dim:
        raise ValueError(f"action_scale has {scale.numel()} entries but act_dim is {act_dim}")
    if not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
        raise ValueError(f"action_scale must be finite and > 0, got {scale.tolist()}")
    return scale


def _compact(lstm: nn.LSTM) -> None:
    """cuDNN wants LSTM weights in one chunk; deepcopy (target networks) and load_state_dict
    break it, and cuDNN then re-compacts on every call. Compacting is a no-op on the CPU."""
    if lstm.weight_hh_l0.is_cuda:
        lstm.flatten_parameters()


def _mlp(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """``layers`` x (Linear -> ReLU), the first mapping ``in_dim`` to ``hidden``."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*mods)


def _check_dims(**dims: int) -> None:
    for name, value in dims.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


class RunningNorm(nn.Module):
    """Running mean/variance normaliser with clipping.

    Statistics are merged with the parallel form of Welford's algorithm (Chan et al. 1979), so a
    batch of any size updates them exactly as if its samples had been seen one by one. The
    buffers ``mean``, ``var`` (population variance) and ``count`` are saved in ``state_dict`` and
    exported to ONNX as constants.

    Args:
        dim: Feature dimension (last axis of the input).
        eps: Added to the variance before the square root, so constant features do not blow up.
        clip: Normalised values are clamped to ``[-clip, clip]``.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, dim: int, eps: float = 1e-4, clip: float = 5.0) -> None:
        super().__init__()
        _check_dims(dim=dim)
        self.dim = dim
        self.eps = float(eps)
        self.clip = float(clip)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        # float64 so that counts of many millions of samples stay exact.
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the statistics of ``x`` (shape ``[..., dim]``) into the running estimate."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"expected last dim {self.dim}, got shape {tuple(x.shape)}")
        x = x.detach().reshape(-1, self.dim).to(device=self.mean.device, dtype=torch.float64)
        n_b = x.shape[0]
        if n_b == 0:
            return
        mean_b = x.mean(dim=0)
        var_b = x.var(dim=0, unbiased=False)
        n_a = self.count
        mean_a = self.mean.to(torch.float64)
        var_a = self.var.to(torch.float64)
        total = n_a + n_b
        delta = mean_b - mean_a
        new_mean = mean_a + delta * (n_b / total)
        m2 = var_a * n_a + var_b * n_b + delta.square() * (n_a * n_b / total)
        self.mean.copy_(new_mean.to(self.mean.dtype))
        self.var.copy_((m2 / total).to(self.var.dtype))
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``clamp((x - mean) / sqrt(var + eps), -clip, clip)``."""
        return torch.clamp(
            (x - self.mean) / torch.sqrt(self.var + self.eps), -self.clip, self.clip
        )

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}, clip={self.clip}"


class RecurrentActor(nn.Module):
    """Recurrent goal-conditioned policy ``pi(a_t | s_t, g, h_t)`` of Peng et al. 2017.

    Recurrent branch ``(s_t, a_{t-1}) -> FC(hidden) ReLU -> LSTM(hidden)``; feedforward branch
    ``(s_t, g) -> FC(hidden) ReLU``; the concatenation goes through ``2 x FC(hidden) ReLU`` and a
    linear output squashed by ``tanh`` and multiplied by ``action_scale``. There is no ``mu``
    input: the policy must infer the dynamics from its history.

    Args:
        obs_dim: Observation size ``s_t``.
        goal_dim: Goal size ``g``.
        act_dim: Action size.
        action_scale: Per-joint (or scalar) bound; actions lie in ``[-scale, scale]``.
        hidden: Width of every hidden layer and of the LSTM.
    """

    is_recurrent: bool = True
    action_scale: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        goal_dim: int,
        act_dim: int,
        action_scale: Sequence[float] | float,
        hidden: int = 128,
    ) -> None:
        super().__init__()
        _check_dims(obs_dim=obs_dim, goal_dim=goal_dim, act_dim=act_dim)
        self.obs_dim, self.goal_dim, self.act_dim, self.hidden = obs_dim, goal_dim, act_dim, hidden
        self.obs_norm = RunningNorm(obs_dim)
        self.goal_norm = RunningNorm(goal_dim)
        self.register_buffer("action_scale", _scale_tensor(action_scale, act_dim))
        self.rec_fc = _mlp(obs_dim + act_dim, hidden, 1)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=1, batch_first=True)
        self.ff_fc = _mlp(obs_dim + goal_dim, hidden, 1)
        self.head = _mlp(2 * hidden, hidden, 2)
        self.out = nn.Linear(hidden, act_dim)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> LstmState:
        """Zero LSTM state ``(h, c)``, each ``[1, batch, hidden]``, on ``device`` (default: the
        module's device)."""
        device = self.action_scale.device if device is None else device
        h = torch.zeros(1, batch, self.hidden, device=device)
        return h, torch.zeros_like(h)

    def forward(
        self,
        obs: torch.Tensor,
        goal: torch.Tensor,
        prev_action: torch.Tensor,
        state: LstmState | None = None,
    ) -> tuple[torch.Tensor, LstmState]:
        """Run ``T`` steps.

        Args:
            obs: ``[B, T, obs_dim]`` raw observations.
            goal: ``[B, T, goal_dim]`` raw goals.
            prev_action: ``[B, T, act_dim]`` action applied at the previous step (zeros at t=0).
            state: LSTM state from the previous call, or ``None`` for zeros.

        Returns:
            ``(action [B, T, act_dim], (h, c))``.
        """
        s = self.obs_norm(obs)
        g = self.goal_norm(goal)
        rec_in = self.rec_fc(torch.cat([s, prev_action / self.action_scale], dim=-1))
        if state is None:
            state = self.initial_state(obs.shape[0], obs.device)
        _compact(self.lstm)
        rec, state = self.lstm(rec_in, state)
        ff = self.ff_fc(torch.cat([s, g], dim=-1))
        z = self.head(torch.cat([rec, ff], dim=-1))
        return torch.tanh(self.out(z)) * self.action_scale, state


class FeedforwardActor(nn.Module):
    """Memoryless goal-conditioned policy ``pi(a_t | s_t, g)``: the Peng et al. 2017 baseline.

    ``(s_t, g) -> 3 x FC(hidden) ReLU -> linear -> tanh * action_scale``. For a frame-stacking
    baseline the trainer concatenates the last ``k`` observations and actions itself and passes the
    stacked size as ``obs_dim``; ``history`` only records ``k`` for the exported metadata.

    Args:
        obs_dim: Observation size (already stacked when ``history > 0``).
        goal_dim: Goal size.
        act_dim: Action size.
        action_scale: Per-joint (or scalar) bound; actions lie in ``[-scale, scale]``.
        hidden: Width of the hidden layers.
        history: Number of stacked past frames in ``obs`` (0 = current observation only).
    """

    is_recurrent: bool = False
    action_scale: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        goal_dim: int,
        act_dim: int,
        action_scale: Sequence[float] | float,
        hidden: int = 128,
        history: int = 0,
    ) -> None:
        super().__init__()
        _check_dims(obs_dim=obs_dim, goal_dim=goal_dim, act_dim=act_dim, history=history)
        self.obs_dim, self.goal_dim, self.act_dim, self.hidden = obs_dim, goal_dim, act_dim, hidden
        self.history = history
        self.obs_norm = RunningNorm(obs_dim)
        self.goal_norm = RunningNorm(goal_dim)
        self.register_buffer("action_scale", _scale_tensor(action_scale, act_dim))
        self.body = _mlp(obs_dim + goal_dim, hidden, 3)
        self.out = nn.Linear(hidden, act_dim)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> None:
        """No recurrent state; present so trainers can treat both actors alike."""
        return None

    def forward(
        self,
        obs: torch.Tensor,
        goal: torch.Tensor,
        prev_action: torch.Tensor | None = None,
        state: None = None,
    ) -> tuple[torch.Tensor, None]:
        """Map ``obs [..., obs_dim]`` and ``goal [..., goal_dim]`` to ``(action, None)``;
        ``prev_action`` and ``state`` are ignored."""
        x = torch.cat([self.obs_norm(obs), self.goal_norm(goal)], dim=-1)
        return torch.tanh(self.out(self.body(x))) * self.action_scale, None


class _CriticBase(nn.Module):
    """Shared parts of the critics: normalisers, action scaling, ``mu`` handling."""

    action_scale: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        goal_dim: int,
        act_dim: int,
        mu_dim: int,
        hidden: int,
        action_scale: Sequence[float] | float,
    ) -> None:
        super().__init__()
        _check_dims(obs_dim=obs_dim, goal_dim=goal_dim, act_dim=act_dim, mu_dim=mu_dim)
        self.obs_dim, self.goal_dim, self.act_dim = obs_dim, goal_dim, act_dim
        self.mu_dim, self.hidden = mu_dim, hidden
        self.obs_norm = RunningNorm(obs_dim)
        self.goal_norm = RunningNorm(goal_dim)
        self.register_buffer("action_scale", _scale_tensor(action_scale, act_dim))

    def _ff_input(
        self,
        s: torch.Tensor,
        goal: torch.Tensor,
        action: torch.Tensor,
        mu: torch.Tensor | None,
    ) -> torch.Tensor:
        parts = [s, self.goal_norm(goal), action / self.action_scale]
        if self.mu_dim > 0:
            if mu is None:
                raise ValueError(f"critic was built with mu_dim={self.mu_dim} but mu is None")
            if mu.shape[-1] != self.mu_dim:
                raise ValueError(f"expected mu [..., {self.mu_dim}], got {tuple(mu.shape)}")
            parts.append(mu)
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def sync_norms_from(self, actor: nn.Module) -> None:
        """Copy ``obs_norm`` and ``goal_norm`` statistics from ``actor`` so that the critic
        normalises exactly as the policy does."""
        for name in ("obs_norm", "goal_norm"):
            src: RunningNorm = getattr(actor, name)
            dst: RunningNorm = getattr(self, name)
            if src.dim != dst.dim:
                raise ValueError(f"{name}: actor has dim {src.dim}, critic has dim {dst.dim}")
            dst.load_state_dict(src.state_dict())


class RecurrentCritic(_CriticBase):
    """Omniscient recurrent critic ``Q(s_t, a_t, a_{t-1}, g, mu)`` of Peng et al. 2017.

    Recurrent branch ``(s_t, a_{t-1}) -> FC(hidden) ReLU -> LSTM(hidden)``; feedforward branch
    ``(s_t, g, a_t, mu) -> FC(hidden) ReLU``; the concatenation goes through ``2 x FC(hidden)
    ReLU`` and a linear layer to a scalar. ``mu`` is the normalised dynamics vector the simulator
    sampled (available only in training); with ``mu_dim=0`` the critic is not omniscient and any
    ``mu`` passed is ignored.

    Args:
        obs_dim: Observation size.
        goal_dim: Goal size.
        act_dim: Action size.
        mu_dim: Size of the dynamics vector, or 0.
        hidden: Width of every hidden layer and of the LSTM.
        action_scale: Actions are divided by this before entering the network (use the actor's).
    """

    is_recurrent: bool = True

    def __init__(
        self,
        obs_dim: int,
        goal_dim: int,
        act_dim: int,
        mu_dim: int,
        hidden: int = 128,
        action_scale: Sequence[float] | float = 1.0,
    ) -> None:
        super().__init__(obs_dim, goal_dim, act_dim, mu_dim, hidden, action_scale)
        self.rec_fc = _mlp(obs_dim + act_dim, hidden, 1)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=1, batch_first=True)
        self.ff_fc = _mlp(obs_dim + goal_dim + act_dim + mu_dim, hidden, 1)
        self.head = _mlp(2 * hidden, hidden, 2)
        self.out = nn.Linear(hidden, 1)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> LstmState:
        """Zero LSTM state ``(h, c)``, each ``[1, batch, hidden]``."""
        device = self.action_scale.device if device is None else device
        h = torch.zeros(1, batch, self.hidden, device=device)
        return h, torch.zeros_like(h)

    def forward(
        self,
        obs: torch.Tensor,
        goal: torch.Tensor,
        action: torch.Tensor,
        prev_action: torch.Tensor,
        mu: torch.Tensor | None,
        state: LstmState | None = None,
    ) -> tuple[torch.Tensor, LstmState]:
        """Return ``(q [B, T, 1], (h, c))`` for ``[B, T, .]`` inputs."""
        s = self.obs_norm(obs)
        rec_in = self.rec_fc(torch.cat([s, prev_action / self.action_scale], dim=-1))
        if state is None:
            state = self.initial_state(obs.shape[0], obs.device)
        _compact(self.lstm)
        rec, state = self.lstm(rec_in, state)
        ff = self.ff_fc(self._ff_input(s, goal, action, mu))
        return self.out(self.head(torch.cat([rec, ff], dim=-1))), state


class FeedforwardCritic(_CriticBase):
    """Omniscient feedforward critic ``Q(s_t, g, a_t, mu)``: ``3 x FC(hidden) ReLU -> linear 1``.

    Same call signature as :class:`RecurrentCritic`; ``prev_action`` and ``state`` are ignored
    and the returned state is ``None``. Arguments as for :class:`RecurrentCritic`.
    """

    is_recurrent: bool = False

    def __init__(
        self,
        obs_dim: int,
        goal_dim: int,
        act_dim: int,
        mu_dim: int,
        hidden: int = 128,
        action_scale: Sequence[float] | float = 1.0,
    ) -> None:
        super().__init__(obs_dim, goal_dim, act_dim, mu_dim, hidden, action_scale)
        self.body = _mlp(obs_dim + goal_dim + act_dim + mu_dim, hidden, 3)
        self.out = nn.Linear(hidden, 1)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> None:
        """No recurrent state."""
        return None

    def forward(
        self,
        obs: torch.Tensor,
        goal: torch.Tensor,
        action: torch.Tensor,
        prev_action: torch.Tensor | None = None,
        mu: torch.Tensor | None = None,
        state: None = None,
    ) -> tuple[torch.Tensor, None]:
        """Return ``(q [..., 1], None)``."""
        x = self._ff_input(self.obs_norm(obs), goal, action, mu)
        return self.out(self.body(x)), None


class DynamicsEstimator(nn.Module):
    """Online system identification with a calibrated uncertainty (UP-OSI / RMA style).

    ``(s_t, a_{t-1}) -> FC(hidden) ReLU -> LSTM(hidden) -> FC(hidden) ReLU -> linear`` producing
    the mean and log-variance of the *normalised* dynamics vector (``mu`` mapped to ``[-1, 1]``
    over the training range). With ``obs_deltas`` the input also holds the change of the
    observation since the previous step, ``s_t - s_{t-1}``, normalised by its own statistics:
    what the dynamics shape (how far a joint moved for the offset it was commanded, how fast the
    puck slows) is a small difference of large values, which the absolute normalisation of
    ``s_t`` would drown. Train with :func:`gaussian_nll`; the log-variance is softly bounded
    to ``[logvar_min, logvar_max]`` (Chua et al. 2018, PETS; the upper bound may be overshot by
    ``log(1 + exp(logvar_min - logvar_max))``, under 1e-5 by default) so the NLL cannot diverge.

    Args:
        obs_dim: Observation size.
        act_dim: Action size.
        mu_dim: Number of estimated dynamics parameters.
        hidden: Width of the hidden layers and of the LSTM.
        action_scale: ``prev_action`` is divided by this before entering the network.
        logvar_min: Soft lower bound of the predicted log-variance.
        logvar_max: Soft upper bound of the predicted log-variance.
        obs_deltas: Also feed ``s_t - s_{t-1}`` (``prev_obs`` becomes an input).
        tracking_joints: With ``obs_deltas``: the first ``tracking_joints`` observation
            entries are the positions of the joints the action offsets (in action order); the
            input then also holds how far each fell short of its commanded offset,
            ``(q_t - q_{t-1}) - a_{t-1}``, normalised: the position controller's tracking,
            which its gains, the joint damping and the link masses shape.
        forward_head: With ``obs_deltas``: a head that predicts the next change of the
            observation from the LSTM's output and the action taken (a recurrent forward
            model, as ReBAL's; Nagabandi et al. 2019). Trained on the training dynamics, its
            error on the transitions observed says how well they explain the robot:
            :meth:`observation_error`.
    """

    is_recurrent: bool = True
    action_scale: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        mu_dim: int,
        hidden: int = 64,
        action_scale: Sequence[float] | float = 1.0,
        logvar_min: float = -10.0,
        logvar_max: float = 2.0,
        obs_deltas: bool = False,
        forward_head: bool = False,
        tracking_joints: int = 0,
    ) -> None:
        super().__init__()
        _check_dims(obs_dim=obs_dim, act_dim=act_dim)
        if forward_head and not obs_deltas:
            raise ValueError("forward_head needs obs_deltas (it predicts the change)")
        if tracking_joints and (not obs_deltas or tracking_joints != act_dim
                                or tracking_joints > obs_dim):
            raise ValueError("tracking_joints needs obs_deltas and one joint per action")
        if mu_dim < 1:
            raise ValueError(f"mu_dim must be >= 1, got {mu_dim}")
        if not logvar_min < logvar_max:
            raise ValueError("logvar_min must be < logvar_max")
        self.obs_dim, self.act_dim, self.mu_dim, self.hidden = obs_dim, act_dim, mu_dim, hidden
        self.logvar_min, self.logvar_max = float(logvar_min), float(logvar_max)
        self.obs_norm = RunningNorm(obs_dim)
        self.obs_deltas = bool(obs_deltas)
        if self.obs_deltas:
            self.delta_norm = RunningNorm(obs_dim)
        self.tracking_joints = int(tracking_joints)
        if self.tracking_joints:
            self.tracking_norm = RunningNorm(self.tracking_joints)
        self.register_buffer("action_scale", _scale_tensor(action_scale, act_dim))
        width = obs_dim * (2 if self.obs_deltas else 1) + act_dim + self.tracking_joints
        self.rec_fc = _mlp(width, hidden, 1)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=1, batch_first=True)
        self.post_fc = _mlp(hidden, hidden, 1)
        self.out = nn.Linear(hidden, 2 * mu_dim)
        self.forward_head = bool(forward_head)
        if self.forward_head:
            self.fwd = nn.Sequential(_mlp(hidden + act_dim, hidden, 1), nn.Linear(hidden, obs_dim))

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> LstmState:
        """Zero LSTM state ``(h, c)``, each ``[1, batch, hidden]``."""
        device = self.action_scale.device if device is None else device
        h = torch.zeros(1, batch, self.hidden, device=device)
        return h, torch.zeros_like(h)

    def predict_delta(self, rec: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The forward head: the normalised next change of the observation (``delta_norm``'s
        units) from the LSTM output ``rec [..., hidden]`` and the action taken after it."""
        return self.fwd(torch.cat([rec, action / self.action_scale], dim=-1))

    def observation_error(self, obs: torch.Tensor, prev_obs: torch.Tensor,
                          prev_action: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """How far the observed change ``obs - prev_obs`` is from the forward head's prediction
        made one step before (from ``h_prev``, the LSTM output then, and ``prev_action``), in
        standard deviations of the change: ``[..., obs_dim]``."""
        return self.delta_norm(obs - prev_obs) - self.predict_delta(h_prev, prev_action)

    def forward_with_rec(
        self, obs: torch.Tensor, prev_action: torch.Tensor, prev_obs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Whole episodes from their start: ``(mu_mean, mu_logvar, rec [B, T, hidden])``, the
        LSTM output at every step (what the forward head reads in training)."""
        x = self._inputs(obs, prev_action, prev_obs)
        _compact(self.lstm)
        rec, _ = self.lstm(x, self.initial_state(obs.shape[0], obs.device))
        mean, logvar = self._heads(rec)
        return mean, logvar, rec

    def tracking_error(self, obs: torch.Tensor, prev_obs: torch.Tensor,
                       prev_action: torch.Tensor) -> torch.Tensor:
        """``(q_t - q_{t-1}) - a_{t-1}`` of the tracked joints (raw, in rad)."""
        n = self.tracking_joints
        return (obs[..., :n] - prev_obs[..., :n]) - prev_action

    def _inputs(self, obs, prev_action, prev_obs) -> torch.Tensor:
        parts = [self.obs_norm(obs), prev_action / self.action_scale]
        if self.obs_deltas:
            if prev_obs is None:
                prev_obs = torch.cat([obs[:, :1], obs[:, :-1]], dim=1)
            parts.insert(1, self.delta_norm(obs - prev_obs))
            if self.tracking_joints:
                parts.append(self.tracking_norm(self.tracking_error(obs, prev_obs, prev_action)))
        return self.rec_fc(torch.cat(parts, dim=-1))

    def _heads(self, rec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.out(self.post_fc(rec)).chunk(2, dim=-1)
        logvar = self.logvar_max - nn.functional.softplus(self.logvar_max - raw)
        logvar = self.logvar_min + nn.functional.softplus(logvar - self.logvar_min)
        return mean, logvar

    def forward(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        state: LstmState | None = None,
        prev_obs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, LstmState]:
        """Return ``(mu_mean [B, T, mu_dim], mu_logvar [B, T, mu_dim], (h, c))``.

        With ``obs_deltas``, ``prev_obs`` is the observation before each of ``obs`` (the first
        observation of an episode is its own predecessor: a zero change); without it, the
        sequence's own shift is used, with ``state``'s last observation unknown (so pass
        ``prev_obs`` whenever a sequence continues an earlier one).
        """
        x = self._inputs(obs, prev_action, prev_obs)
        if state is None:
            state = self.initial_state(obs.shape[0], obs.device)
        _compact(self.lstm)
        rec, state = self.lstm(x, state)
        mean, logvar = self._heads(rec)
        return mean, logvar, state


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (without the constant ``0.5 log 2 pi``).

    ``0.5 * (logvar + (target - mean)^2 / exp(logvar))`` averaged over all elements; minimising
    it makes ``exp(logvar)`` an estimate of the squared error, i.e. a calibrated variance.
    """
    return 0.5 * (logvar + (target - mean).square() * torch.exp(-logvar)).mean()
