"""Recurrent and feedforward policies: building an actor, loading a run's, acting with one.

An actor is described by an :class:`ActorSpec` (variant, width, frame stack, in-network
kinematic features, and the env whose robot it drives). Every method that trains policies saves
its actor with that spec's fields in the run's config, so :func:`load_actor_from_run` rebuilds
any run's actor (for evaluation, export or a dataset of its rollouts) without importing the
trainer. :class:`BatchPolicy` steps a batch of envs with an actor, keeping its recurrent state
or frame history, so that training rollouts, evaluation and dataset collection feed the actor
exactly as training did.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import sim  # noqa: F401  (registers the envs)
from meta_train.common.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from meta_train.common.config import ConfigError, RemovedOption, drop_removed
from meta_train.common.kinematics import (
    Featurized,
    ForwardKinematics,
    PushFeatures,
    strip_kinematics,
)
from meta_train.common.networks import FeedforwardActor, RecurrentActor
from sim.world import NOMINAL_TABLE_HEIGHT_M

VARIANTS = ("lstm", "ff", "ff_history", "ff_norand")
"""Actor variants (Peng et al.'s Table II): recurrent, feedforward, feedforward over a frame
stack, feedforward trained on nominal dynamics only."""

_REMOVED_AT = "ecaba068e4101c945e6646a17974d15e4b5e4907"
REMOVED_OPTIONS: dict[str, RemovedOption] = {
    "time_aware_critic": RemovedOption(False, _REMOVED_AT),
    "absorbing_final_state": RemovedOption(False, _REMOVED_AT),
    "n_step": RemovedOption(1, _REMOVED_AT),
    "actor_mu_aux": RemovedOption(0.0, _REMOVED_AT),
    "uninformed_rl_weight": RemovedOption(1.0, _REMOVED_AT),
    "bc_q_filter_informed_only": RemovedOption(False, _REMOVED_AT),
    "train_dynamics_emphasis": RemovedOption({}, _REMOVED_AT),
}
"""Trainer options measured level with the preset and removed (``docs/experiments.md``): a
saved run holding one at its "off" value still loads; any other value names the commit that
still has its code."""


@dataclass
class ActorSpec:
    """What an actor's architecture depends on (the fields keep the trainer config's names).

    Attributes:
        env_id: gym id of the env the actor acts in.
        env_kwargs: the keyword arguments the env was made with.
        variant: one of :data:`VARIANTS`.
        hidden: width of hidden layers and the LSTM.
        history: frames stacked by the ``ff_history`` variant.
        kinematic_features: push envs: tool position by forward kinematics inside the network.
    """

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    variant: str = "lstm"
    hidden: int = 64
    history: int = 8
    kinematic_features: bool = True

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> ActorSpec:
        """The spec of a saved config (missing fields at their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @property
    def frames(self) -> int:
        """Frames in the actor's observation input (0: a single observation)."""
        return self.history if self.variant == "ff_history" else 0


def make_env_unwrapped(env_id: str, env_kwargs: Mapping[str, Any] | None = None):
    """``gym.make(env_id, **env_kwargs).unwrapped`` (gymnasium's wrapper notices silenced).

    Raises:
        ConfigError: ``env_kwargs`` has an entry the env does not take.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return gym.make(env_id, **dict(env_kwargs or {})).unwrapped
        except TypeError as e:
            raise ConfigError(f"{env_id} with env_kwargs {dict(env_kwargs or {})}: {e}") from None


def push_features(spec: ActorSpec, act_dim: int, history: int = 0) -> PushFeatures | None:
    """The in-network kinematic features for push envs (None when off or not a push env)."""
    if not spec.kinematic_features:
        return None
    env = make_env_unwrapped(spec.env_id, spec.env_kwargs)
    world = getattr(env, "world", None)
    env.close()
    if world is None:
        return None
    robot = world.spec
    base = np.array(robot.base_position) + [0.0, 0.0, NOMINAL_TABLE_HEIGHT_M]
    fk = ForwardKinematics(robot.urdf, robot.joint_names, robot.ee_link, base)
    return PushFeatures(fk, len(robot.joint_names), act_dim, history)


def build_actor(spec: ActorSpec, obs_dim: int, goal_dim: int, act_dim: int,
                scale: Sequence[float]) -> nn.Module:
    """The actor of a variant (wrapped with kinematic features when enabled)."""
    if spec.variant not in VARIANTS:
        raise ConfigError(f"variant must be one of {VARIANTS}, got {spec.variant!r}")
    feats = push_features(spec, act_dim, spec.frames)
    eo, eg = (feats.extra_obs, feats.extra_goal) if feats else (0, 0)
    if spec.variant == "lstm":
        net = RecurrentActor(obs_dim + eo, goal_dim + eg, act_dim, scale, hidden=spec.hidden)
    elif spec.variant == "ff_history":
        net = FeedforwardActor(spec.history * (obs_dim + act_dim) + eo, goal_dim + eg, act_dim,
                               scale, hidden=spec.hidden, history=spec.history)
    else:
        net = FeedforwardActor(obs_dim + eo, goal_dim + eg, act_dim, scale, hidden=spec.hidden)
    return Featurized(net, feats) if feats else net


@dataclass
class PolicyRun:
    """A trained policy's provenance, as loaded by :func:`load_actor_from_run`.

    Attributes:
        checkpoint: the checkpoint directory the actor came from.
        spec: the actor's architecture and env.
        config: the training run's saved configuration (removed options dropped).
    """

    checkpoint: Path
    spec: ActorSpec
    config: dict[str, Any]

    @property
    def env_id(self) -> str:
        return self.spec.env_id

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return self.spec.env_kwargs

    @property
    def variant(self) -> str:
        return self.spec.variant

    @property
    def history(self) -> int:
        return self.spec.history


def run_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """The checkpoint directory ``which`` of a run: ``best`` (by the periodic evaluation; the
    latest checkpoint when there is none yet), ``final``, ``latest`` or ``latest-online``.

    Raises:
        CheckpointError: the run has no such checkpoint.
    """
    run_dir = Path(run_dir)
    if which in ("latest", "latest-online"):
        path = latest_checkpoint(run_dir)
        if path is None:
            raise CheckpointError(f"{run_dir}: no checkpoint")
        return path
    path = run_dir / which
    if not path.is_dir():
        path = latest_checkpoint(run_dir) if which == "best" else None
        if path is None:
            raise CheckpointError(f"{run_dir}: no '{which}' checkpoint")
    return path


def load_actor_from_run(run_dir, which: str = "best") -> tuple[nn.Module, PolicyRun]:
    """The actor of a finished or running run (``best``, ``final`` or ``latest`` checkpoint);
    from a checkpoint of a run with ``actor_ema``, its moving average, as ``final`` holds
    (``latest-online``: the latest checkpoint's online actor instead). The actor is in eval
    mode, on the CPU.

    Raises:
        CheckpointError: no such checkpoint, or weights that do not match the saved config.
        ConfigError: the run used an option removed since (:data:`REMOVED_OPTIONS`).
    """
    path = run_checkpoint(run_dir, which)
    tg, _, state = load_checkpoint(path)
    values = drop_removed(state["config"], REMOVED_OPTIONS, f"run {Path(run_dir).name}")
    # Runs from before kinematic features existed have unprefixed actor weights.
    values.setdefault("kinematic_features", any(k.startswith("net.") for k in tg["actor"]))
    spec = ActorSpec.from_config(values)
    d = state["dims"]
    scale = [1.0] * d["act_dim"]  # replaced by the saved buffer below
    actor = build_actor(spec, d["obs_dim"], d["goal_dim"], d["act_dim"], scale)
    try:
        group = "actor" if which == "latest-online" else "actor_ema"
        actor.load_state_dict(strip_kinematics(tg.get(group, tg["actor"])))
    except RuntimeError as e:
        raise CheckpointError(f"{path}: actor weights do not match its config ({e})") from None
    actor.eval()
    return actor, PolicyRun(path, spec, values)


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
