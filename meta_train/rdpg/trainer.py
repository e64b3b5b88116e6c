"""RDPG + HER with an omniscient critic over randomized dynamics (Peng et al. 2017).

The loop, top to bottom (CleanRL style):

1. collect ``n_envs`` whole episodes with the current actor plus exploration noise; store them
   with the dynamics ``mu`` they were sampled under;
2. update the observation normalisers;
3. ``updates_per_iteration`` times: sample whole episodes, relabel goals with HER, and take one
   gradient step of the critic (TD targets from target networks, back-propagation through time
   over the whole episode) and of the actor (deterministic policy gradient through the critic);
   Polyak-average the target networks;
4. evaluate, log, checkpoint.

With ``collector: process`` step 1 runs in a process of its own (:mod:`meta_train.collector`):
the episodes of iteration ``i + 1`` are collected, with the actor as it was before the updates
of iteration ``i``, while those updates run; on two cores an iteration then costs the larger
of the two instead of their sum. The learner still waits for each iteration's episodes, so the
run is as reproducible, and resumes as exactly, as an inline one.

The critic sees ``mu`` (omniscient); the actor never does and must infer the dynamics from its
history (recurrent branch over ``(s_t, a_{t-1})``). Episodes end only by time limit, so every
transition bootstraps (time-limit ends are not terminal); with ``time_aware_critic`` the critic
also sees the share of the episode left and the limit ends its bootstrap (Pardo et al. 2018),
while the actor still sees neither. Baselines from Peng's Table II share the
loop: ``ff`` (feedforward actor), ``ff_history`` (feedforward over the last k states and
actions), ``ff_norand`` (feedforward, trained on nominal dynamics only).
"""

from __future__ import annotations

import copy
import csv
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import meta_train.toy_envs  # noqa: F401  (registers PointGoal-v0)
import sim  # noqa: F401  (registers the envs)
from meta_train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from meta_train.collector import Collector, CollectorProcess, Rollout, make_env
from meta_train.config import ConfigError, RDPGConfig, build_config, save_config
from meta_train.evaluate import evaluate_actor, make_eval_env
from meta_train.kinematics import (
    Featurized,
    ForwardKinematics,
    PushFeatures,
    strip_kinematics,
)
from meta_train.networks import (
    FeedforwardActor,
    FeedforwardCritic,
    RecurrentActor,
    RecurrentCritic,
)
from meta_train.policy import actor_input
from meta_train.replay import EpisodeReplay
from sim.world import NOMINAL_TABLE_HEIGHT_M


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; explicit names are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


def push_features(cfg: RDPGConfig, act_dim: int, history: int = 0) -> PushFeatures | None:
    """The in-network kinematic features for push envs (None when off or not a push env)."""
    if not cfg.kinematic_features:
        return None
    env = make_env(cfg).unwrapped
    world = getattr(env, "world", None)
    env.close()
    if world is None:
        return None
    spec = world.spec
    base = np.array(spec.base_position) + [0.0, 0.0, NOMINAL_TABLE_HEIGHT_M]
    fk = ForwardKinematics(spec.urdf, spec.joint_names, spec.ee_link, base)
    return PushFeatures(fk, len(spec.joint_names), act_dim, history)


def build_actor(cfg: RDPGConfig, obs_dim: int, goal_dim: int, act_dim: int, scale):
    """The actor of a variant (wrapped with kinematic features when enabled)."""
    hist = cfg.history if cfg.variant == "ff_history" else 0
    feats = push_features(cfg, act_dim, hist)
    eo, eg = (feats.extra_obs, feats.extra_goal) if feats else (0, 0)
    if cfg.variant == "lstm":
        net = RecurrentActor(obs_dim + eo, goal_dim + eg, act_dim, scale, hidden=cfg.hidden)
    elif cfg.variant == "ff_history":
        net = FeedforwardActor(cfg.history * (obs_dim + act_dim) + eo, goal_dim + eg, act_dim,
                               scale, hidden=cfg.hidden, history=cfg.history)
    else:
        net = FeedforwardActor(obs_dim + eo, goal_dim + eg, act_dim, scale, hidden=cfg.hidden)
    return Featurized(net, feats) if feats else net


def privileged_dim(cfg: RDPGConfig, mu_dim: int) -> int:
    """Width of the critic's privileged input: ``mu`` if omniscient, then the time left if
    time-aware."""
    return (mu_dim if cfg.omniscient_critic else 0) + int(cfg.time_aware_critic)


def privileged_input(cfg: RDPGConfig, mu: torch.Tensor, horizon: int,
                     length: int) -> torch.Tensor | None:
    """The critic's privileged input at positions ``0 .. length-1`` of whole episodes of
    ``horizon`` steps, ``[B, length, privileged_dim]``: the episode's ``mu`` (``[B, mu_dim]``)
    if the critic is omniscient, then with ``time_aware_critic`` the share of the episode left,
    ``(horizon - t) / horizon`` (1 at the first step, 0 at the state the time limit ends on).
    None when the critic has no privileged input."""
    parts = []
    if cfg.omniscient_critic and mu.shape[-1]:
        parts.append(mu[:, None].expand(-1, length, -1))
    if cfg.time_aware_critic:
        left = (horizon - torch.arange(length, device=mu.device, dtype=mu.dtype)) / horizon
        parts.append(left[None, :, None].expand(mu.shape[0], -1, -1))
    if len(parts) < 2:  # the preset's case: mu alone stays a view, as before
        return parts[0] if parts else None
    return torch.cat(parts, dim=-1)


TIME_LIMIT = ("bootstrap", "terminal", "absorbing")

#: Options the saved networks' shapes or inputs depend on: ``--resume`` must keep them.
NETWORK_FIELDS = ("env_id", "variant", "history", "kinematic_features", "hidden",
                  "critic_hidden", "omniscient_critic", "time_aware_critic")


def network_changes(saved: dict, cfg: RDPGConfig) -> list[str]:
    """``--flag: run X, now Y`` for each network-shaping option that differs between a saved
    config and ``cfg`` (a field missing from an older checkpoint counts as its default), and
    for ``actor_mu_aux`` where one side has the auxiliary head and the other not."""
    defaults = RDPGConfig()
    out = []
    for name in NETWORK_FIELDS:
        was, now = saved.get(name, getattr(defaults, name)), getattr(cfg, name)
        if was != now:
            out.append(f"--{name.replace('_', '-')}: run {was!r}, now {now!r}")
    was, now = saved.get("actor_mu_aux", 0.0), cfg.actor_mu_aux
    if (was > 0) != (now > 0):  # the head exists or not; its weight alone may change
        out.append(f"--actor-mu-aux: run {was!r}, now {now!r}")
    return out


def td_target(reward: torch.Tensor, q_next: torch.Tensor, gamma: float, limit: str,
              clip: bool) -> torch.Tensor:
    """TD targets ``r_t + gamma * Q'(s_{t+1}, ...)`` of whole episodes (``[B, T]`` each).

    Episodes end only at the time limit; ``limit`` says what the last transition's target is:
    ``bootstrap``, like every other (the limit is not a property of the state the critic
    sees); ``terminal``, the reward alone (a time-aware critic, which sees the time left);
    ``absorbing``, the reward of the final state as if kept for ever, ``r / (1 - gamma)``, so
    that where the episode ends weighs as much as the success measure makes it weigh. ``clip``
    bounds the targets to the returns rewards in ``[-1, 0]`` allow.
    """
    if limit not in TIME_LIMIT:
        raise ValueError(f"limit must be one of {TIME_LIMIT}, got {limit!r}")
    y = reward + gamma * q_next
    if limit != "bootstrap":
        last = reward[:, -1:] / (1.0 - gamma) if limit == "absorbing" else reward[:, -1:]
        y = torch.cat([y[:, :-1], last], dim=1)
    return y.clamp(-1.0 / (1.0 - gamma), 0.0) if clip else y


def goal_rewards(compute_reward, achieved_goal: np.ndarray, goal: np.ndarray,
                 n_step: int) -> np.ndarray:
    """``[B, T, n]`` rewards of the ``n_step`` transitions from each ``t`` scored against the
    goal of transition ``t`` (HER gives every transition its own goal, so the rewards stored
    with later transitions belong to other goals); zeros past the episode's end.
    ``achieved_goal`` is ``[B, T+1, g]``, ``goal`` ``[B, T, g]``."""
    b, horizon = goal.shape[:2]
    out = np.zeros((b, horizon, n_step), np.float32)
    for k in range(min(n_step, horizon)):
        out[:, :horizon - k, k] = compute_reward(achieved_goal[:, 1 + k:], goal[:, :horizon - k],
                                                 None)
    return out


def n_step_target(reward_n: torch.Tensor, q_shifted: torch.Tensor,
                  one_step: torch.Tensor | None, gamma: float, limit: str,
                  clip: bool) -> torch.Tensor:
    """n-step TD targets of whole episodes whose transitions each have their own goal.

    ``reward_n [B, T, n]`` from :func:`goal_rewards`; ``q_shifted [B, T+1]`` the target
    critic's value at position ``j`` for the goal of transition ``j - n`` (the networks read
    the goal only in their feedforward branch, so one pass with the goals shifted by ``n``
    gives every bootstrap); ``one_step [B, T]`` the one-step targets (:func:`td_target`),
    needed only where ``limit`` is ``bootstrap``.
    Target of transition ``t``: ``r_t + ... + gamma^(m-1) r_(t+m-1) + gamma^m V``, ``m =
    min(n, T - t)``, ``V`` the value of state ``t+m`` for goal ``t``: ``q_shifted`` inside the
    episode and at its end where ``limit`` bootstraps with ``m = n``; at the end, nothing for
    ``terminal`` and the final state's reward for ever for ``absorbing``. The last ``n - 1``
    transitions of a ``bootstrap`` episode, whose bootstrap ``q_shifted`` does not hold, keep
    the one-step target. Uncorrected for exploration, as in Ape-X and R2D2.
    """
    if limit not in TIME_LIMIT:
        raise ValueError(f"limit must be one of {TIME_LIMIT}, got {limit!r}")
    b, horizon, n = reward_n.shape
    t = torch.arange(horizon, device=reward_n.device)
    m = torch.clamp(horizon - t, max=n)
    disc = gamma ** torch.arange(n, device=reward_n.device, dtype=reward_n.dtype)
    last_k = (m - 1).expand(b, -1)[..., None]  # the last reward summed into each target
    ret = torch.cumsum(reward_n * disc, dim=-1).gather(-1, last_k)[..., 0]
    bootstrap = q_shifted[:, t + m]
    ends = (t + m) == horizon
    if limit == "terminal":
        bootstrap = torch.where(ends, torch.zeros_like(bootstrap), bootstrap)
    elif limit == "absorbing":
        last = reward_n.gather(-1, last_k)[..., 0] / (1.0 - gamma)
        bootstrap = torch.where(ends, last, bootstrap)
    y = ret + gamma ** m.to(reward_n.dtype) * bootstrap
    if limit == "bootstrap":
        if one_step is None:
            raise ValueError("limit 'bootstrap' needs the one-step targets (the last n - 1 "
                             "transitions keep them)")
        y = torch.where(m < n, one_step, y)
    return y.clamp(-1.0 / (1.0 - gamma), 0.0) if clip else y


def build_critic(cfg: RDPGConfig, obs_dim, goal_dim, act_dim, mu_dim, scale):
    """Recurrent omniscient critic for the LSTM policy, feedforward for the baselines."""
    feats = push_features(cfg, act_dim)
    eo, eg = (feats.extra_obs, feats.extra_goal) if feats else (0, 0)
    cls = RecurrentCritic if cfg.variant == "lstm" else FeedforwardCritic
    net = cls(obs_dim + eo, goal_dim + eg, act_dim, privileged_dim(cfg, mu_dim),
              hidden=cfg.critic_hidden or cfg.hidden, action_scale=scale)
    return Featurized(net, feats) if feats else net


def _featurize(net, obs: torch.Tensor, goal: torch.Tensor):
    return net.featurize(obs, goal) if isinstance(net, Featurized) else (obs, goal)


def _tool_of(net, obs: torch.Tensor) -> torch.Tensor | None:
    """Tool positions of a batch, computed once and shared by every network call of an update
    (forward kinematics is a seventh of an update's time otherwise); None without features."""
    return net.features.tool(obs) if isinstance(net, Featurized) else None


def _with_tool(net, tool: torch.Tensor | None, horizon: int | None = None) -> dict:
    """Keyword arguments passing precomputed tool positions to ``net`` where it can use them."""
    if tool is None or not isinstance(net, Featurized) or net.features.history:
        return {}
    return {"tool": tool if horizon is None else tool[:, :horizon]}


def reinforcement_term(q: torch.Tensor, informed: torch.Tensor,
                       uninformed_weight: float) -> torch.Tensor:
    """The actor's reinforcement loss ``-Q`` averaged over steps weighted 1 where the expert
    label was given knowing the dynamics (``informed``, bool, same shape as ``q``) and
    ``uninformed_weight`` elsewhere; 0 when every weight is 0."""
    w = torch.where(informed, 1.0, uninformed_weight).to(q.dtype)
    return -(q * w).sum() / w.sum().clamp(min=1e-6)


def q_filter_mask(q_label: torch.Tensor, q_actor: torch.Tensor,
                  informed: torch.Tensor | None = None) -> torch.Tensor:
    """Steps whose label is cloned: where the critic values the label above the actor's own
    action (Q-filter, Nair et al. 2018), and, given ``informed`` (bool, same shape), every step
    whose label was given without knowing the true dynamics."""
    keep = q_label > q_actor
    return keep if informed is None else keep | ~informed


class RDPGTrainer:
    """Owns envs, networks, optimisers, replay and the training state of one run."""

    def __init__(self, cfg: RDPGConfig, resume: bool = False) -> None:
        cfg.validate()
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.run_dir = Path(cfg.run_dir) / (cfg.run_name or self._default_name())
        if not resume and latest_checkpoint(self.run_dir) is not None:
            raise CheckpointError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue it or "
                f"choose another --run-name"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cfg.run_name = self.run_dir.name

        probe = make_env(cfg).unwrapped
        obs, info = probe.reset(seed=cfg.seed)
        self.compute_reward = probe.compute_reward
        self.horizon = int(getattr(probe, "max_episode_steps", 0) or probe.spec.max_episode_steps)
        self.obs_dim = obs["observation"].shape[0]
        self.goal_dim = obs["desired_goal"].shape[0]
        self.act_dim = probe.action_space.shape[0]
        self.mu_dim = int(np.asarray(info.get("mu", np.zeros(0))).shape[0])
        self.action_scale = probe.action_space.high.astype(np.float32)
        if not np.allclose(probe.action_space.low, -probe.action_space.high):
            raise ValueError("the trainer expects a symmetric action space [-b, b]")
        self._demos = bool(cfg.demo_episodes or cfg.demo_fraction)
        if self._demos and not hasattr(probe, "world"):
            raise ConfigError(f"{cfg.env_id}: demonstrations need a push env")
        probe.close()

        scale = self.action_scale.tolist()
        self.time_limit = ("bootstrap" if not cfg.time_aware_critic else
                           "absorbing" if cfg.absorbing_final_state else "terminal")
        self.actor = build_actor(cfg, self.obs_dim, self.goal_dim, self.act_dim, scale)
        self.critic = build_critic(cfg, self.obs_dim, self.goal_dim, self.act_dim, self.mu_dim,
                                   scale)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        # the moving average of the actor that evaluations and saved policies use (--actor-ema)
        self.actor_ema = copy.deepcopy(self.actor) if cfg.actor_ema > 0 else None
        self.mu_head: nn.Linear | None = None
        self._lstm_out: dict[str, torch.Tensor] = {}
        if cfg.actor_mu_aux > 0:
            lstm = getattr(getattr(self.actor, "net", self.actor), "lstm", None)
            if lstm is None or self.mu_dim == 0:
                raise ConfigError("actor_mu_aux needs a recurrent actor and an env with mu")
            self.mu_head = nn.Linear(lstm.hidden_size, self.mu_dim).to(self.device)
            # the online actor's LSTM output of its latest call (after the target's deepcopy,
            # which must not carry the hook)
            lstm.register_forward_hook(
                lambda _m, _i, out: self._lstm_out.__setitem__("rec", out[0]))
        self._actor_params = list(self.actor.parameters()) + (
            list(self.mu_head.parameters()) if self.mu_head is not None else [])
        self.actor_opt = torch.optim.Adam(self._actor_params, lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.replay = EpisodeReplay(
            cfg.buffer_episodes, self.horizon, self.obs_dim, self.act_dim, self.goal_dim,
            self.mu_dim, self.compute_reward, cfg.her_strategy, cfg.her_k,
            moved_fraction=cfg.moved_fraction,
        )
        self._env_dims = {"obs_dim": self.obs_dim, "goal_dim": self.goal_dim,
                          "act_dim": self.act_dim, "mu_dim": self.mu_dim, "horizon": self.horizon}
        # inline: the trainer's own generator and actor act; process: a collector process with
        # a generator of its own (started by train(); its state and the weights of the request
        # in flight are checkpointed, so that a resumed run continues exactly)
        self.collector: Collector | None = None
        self.remote: CollectorProcess | None = None
        self._collector_actor: dict[str, np.ndarray] | None = None
        self._collector_rng = np.random.default_rng([cfg.seed, 1]).bit_generator.state
        if cfg.collector == "inline":
            self.collector = Collector(cfg, self.actor, self.rng, self.device, self._env_dims,
                                       self.action_scale)
        self.iteration = 0
        self.env_steps = 0
        self.updates = 0
        self.best_success = -1.0
        self.history_rows: list[dict] = []
        self._last_eval: dict = {}
        self._wall_before, self._wall_start = 0.0, None
        self._tb = None  # TensorBoard writer, opened at the first progress row
        self._resumed_at: int | None = None  # first env step logged again after a resume
        if resume:
            ckpt = latest_checkpoint(self.run_dir)
            if ckpt is None:
                raise CheckpointError(f"--resume: no complete checkpoint in {self.run_dir}")
            self.load(ckpt)
        save_config(cfg, self.run_dir / "config.yaml")

    def _default_name(self) -> str:
        c = self.cfg
        return f"{c.env_id}__rdpg_her__{c.variant}__{c.seed}__{int(time.time())}"

    # --- rollouts -----------------------------------------------------------------------------
    @property
    def envs(self):
        """The training envs (inline collection only)."""
        return self._inline().envs

    @property
    def demo_env(self):
        """The demonstrator's env (inline collection only; None without demonstrations)."""
        return self._inline().demo_env

    @property
    def demo_policy(self):
        """The scripted demonstrator (inline collection only)."""
        return self._inline().demo_policy

    def _inline(self) -> Collector:
        if self.collector is None:
            raise RuntimeError("the envs live in the collector process (collector 'process')")
        return self.collector

    def _warm(self, iteration: int) -> bool:
        return iteration * self.cfg.n_envs < self.cfg.warmup_episodes

    def collect(self) -> dict:
        """One episode per env with exploration; store them; return episode statistics."""
        return self._store(self._inline().rollout(self._warm(self.iteration)))

    def collect_demo(self) -> None:
        """One scripted demonstration with OU exploration noise, stored like any episode."""
        self._store(self._inline().demo())

    def _store(self, ro: Rollout) -> dict:
        """Put collected episodes in the replay and count their steps; the policy's episodes
        also update the observation normalisers (demonstrations do not). Returns the
        rollout's success rate (``train_success``) for policy episodes."""
        for i in range(ro.n):
            self.replay.add(ro.obs[i], ro.action[i], ro.achieved_goal[i], ro.desired_goal[i],
                            ro.mu[i], demo=ro.demo,
                            expert_action=None if ro.expert_action is None
                            else ro.expert_action[i],
                            expert_informed=ro.expert_informed[i])
        self.env_steps += ro.env_steps
        if ro.demo:
            return {}
        cfg = self.cfg
        # normalisers: actor input (stacked for ff_history) and critic input
        with torch.no_grad():
            ot = torch.as_tensor(ro.obs, device=self.device)
            prev = torch.as_tensor(
                np.concatenate([np.zeros_like(ro.action[:, :1]), ro.action], 1),
                device=self.device)
            dgt = torch.as_tensor(ro.desired_goal, device=self.device)
            a_obs, a_goal = _featurize(
                self.actor, actor_input(cfg.variant, cfg.history, ot, prev)[:, :-1], dgt)
            self.actor.obs_norm.update(a_obs)
            self.actor.goal_norm.update(a_goal)
            c_obs, c_goal = _featurize(self.critic, ot[:, :-1], dgt)
            self.critic.obs_norm.update(c_obs)
            self.critic.goal_norm.update(c_goal)
        final = self.compute_reward(ro.achieved_goal[:, -1], ro.desired_goal[:, -1], None) == 0
        return {"train_success": float(np.mean(final))}

    def _store_all(self, rollouts: list[Rollout]) -> tuple[dict, int]:
        """Store each rollout; returns the policy episodes' statistics and the env steps
        stored."""
        before, stats = self.env_steps, {}
        for ro in rollouts:
            stats.update(self._store(ro))
        return stats, self.env_steps - before

    def _initial_demos(self) -> int:
        """Demonstrations to collect before the first iteration (none on a resume).
        They count towards the budget and never take all of it."""
        if self.iteration or not self._demos:
            return 0
        return min(self.cfg.demo_episodes, self.cfg.total_env_steps // (2 * self.horizon))

    def _actor_weights(self) -> dict[str, np.ndarray]:
        """The online actor's weights and normaliser statistics, on the CPU, for the
        collector process."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.actor.state_dict().items()}

    def _start_remote(self) -> None:
        """Start the collector process (at the start of ``train``) and its first request."""
        cfg = self.cfg
        actor = build_actor(cfg, self.obs_dim, self.goal_dim, self.act_dim,
                            self.action_scale.tolist())
        self.remote = CollectorProcess(cfg, actor, self._env_dims, self.action_scale,
                                       self._collector_rng)
        n_demo = self._initial_demos()
        if n_demo:
            rollouts, self._collector_rng = self.remote.demos(n_demo)
            self._store_all(rollouts)
        if self._collector_actor is None:
            self._collector_actor = self._actor_weights()
        self._submit_remote(self.iteration)

    def _submit_remote(self, iteration: int) -> None:
        """Ask the collector process for iteration ``iteration``'s episodes, acted with the
        actor as it was when the previous iteration's episodes were stored (before its
        updates); nothing once the budget has no room for them."""
        per_iter = self.cfg.n_envs * self.horizon
        if self.env_steps + per_iter <= self.cfg.total_env_steps:
            self.remote.submit(self._collector_actor, self._warm(iteration),
                               self.cfg.total_env_steps - self.env_steps)

    def _collect_remote(self) -> tuple[dict, int]:
        """This iteration's episodes from the collector process, stored; the next request
        submitted. Returns the episode statistics and the env steps stored."""
        waited = time.perf_counter()
        rollouts, self._collector_rng = self.remote.receive()
        self._waited_s += time.perf_counter() - waited
        stats, added = self._store_all(rollouts)
        self._collector_actor = self._actor_weights()
        self._submit_remote(self.iteration + 1)
        return stats, added

    # --- learning -----------------------------------------------------------------------------
    def update(self) -> dict:
        """One critic and one actor gradient step on a batch of whole, relabelled episodes."""
        cfg, dev = self.cfg, self.device
        b = self.replay.sample(cfg.batch_episodes, self.rng)
        t = lambda x: torch.as_tensor(x, device=dev)  # noqa: E731
        obs, act, prev, goal, rew = t(b.obs), t(b.action), t(b.prev_action), t(b.goal), t(b.reward)
        horizon = act.shape[1]
        mu = privileged_input(cfg, t(b.mu), horizon, horizon + 1)
        pin = actor_input(cfg.variant, cfg.history, obs, prev)
        with torch.no_grad():
            tool = _tool_of(self.critic, obs)

            def target_values(shift: int) -> torch.Tensor:
                """Target critic's values along the episode, ``[B, T+1]``, with the goal of
                transition ``j - shift`` at position ``j`` (shift 1: each transition's goal
                at the state it leads to)."""
                g = torch.cat([goal[:, :1].expand(-1, shift, -1), goal], dim=1)[:, :horizon + 1]
                pi, _ = self.actor_target(pin, g, prev, **_with_tool(self.actor_target, tool))
                q, _ = self.critic_target(obs, g, pi, prev, mu,
                                          **_with_tool(self.critic_target, tool))
                return q[..., 0]

            y = None  # one-step targets: the target itself, or the n-step tail's at bootstrap
            if cfg.n_step == 1 or self.time_limit == "bootstrap":
                y = td_target(rew, target_values(1)[:, 1:], cfg.gamma, self.time_limit,
                              cfg.clip_target)
            if cfg.n_step > 1:
                r_n = t(goal_rewards(self.compute_reward, b.achieved_goal, b.goal, cfg.n_step))
                y = n_step_target(r_n, target_values(cfg.n_step), y, cfg.gamma,
                                  self.time_limit, cfg.clip_target)
        mu_t = mu[:, :horizon] if mu is not None else None
        c_tool = _with_tool(self.critic, tool, horizon)
        q, _ = self.critic(obs[:, :horizon], goal, act, prev[:, :horizon], mu_t, **c_tool)
        critic_loss = F.mse_loss(q[..., 0], y)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        pi, _ = self.actor(pin[:, :horizon], goal, prev[:, :horizon],
                           **_with_tool(self.actor, tool, horizon))
        q_pi, _ = self.critic(obs[:, :horizon], goal, pi, prev[:, :horizon], mu_t, **c_tool)
        scale = self.actor.action_scale
        if cfg.uninformed_rl_weight < 1.0:  # steps the critic judges by unknowable dynamics
            rl = reinforcement_term(q_pi[..., 0], t(b.expert_informed), cfg.uninformed_rl_weight)
        else:
            rl = -q_pi.mean()
        actor_loss = rl + cfg.action_l2 * ((pi / scale) ** 2).mean()
        out = {}
        if self.mu_head is not None:  # the LSTM output of the call that made pi
            pred = self.mu_head(self._lstm_out["rec"])
            aux = F.mse_loss(pred, t(b.mu)[:, None, :].expand_as(pred))
            actor_loss = actor_loss + cfg.actor_mu_aux * aux
            out["mu_aux_loss"] = aux.item()
        if cfg.bc_weight > 0 and (self.replay.n_labelled if cfg.expert_labels
                                  else self.replay.n_demos):
            bc, kept = self._bc_loss()
            actor_loss = actor_loss + cfg.bc_weight * bc
            out.update(bc_loss=bc.item(), bc_kept=kept)
        self.actor_opt.zero_grad(set_to_none=True)
        # Gradients of the actor's parameters only: the critic's would be discarded, and its
        # recurrent branch (which sees no action of the actor) is skipped in the backward pass.
        actor_loss.backward(inputs=self._actor_params)
        self.actor_opt.step()
        self._soft_update()
        self.updates += 1
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                "q_mean": q.mean().item(), **out}

    def _bc_loss(self) -> tuple[torch.Tensor, float]:
        """Behaviour cloning on whole episodes with the Q-filter (Nair et al. 2018).

        The actor replays each episode through its recurrent branch (the executed previous
        actions) and is pulled towards the target action only at steps where the critic values
        that action above the actor's own (``bc_q_filter``; without it, at every step). The
        targets are the demonstrations' executed actions, or with ``expert_labels`` the expert's
        label of every state of every stored episode, the actor's own included (DAgger). With
        ``bc_q_filter_informed_only`` the filter applies only to labels the teacher gave knowing
        the true dynamics; the others are always kept: the omniscient critic's verdict on them
        depends on dynamics neither the teacher nor the student could tell apart yet, and
        filtering by it would teach the student, per true dynamics, what it cannot infer.
        Returns the loss and the share of steps kept.
        """
        cfg, dev = self.cfg, self.device
        if cfg.expert_labels:
            b = self.replay.sample_labelled(cfg.bc_batch_episodes, self.rng)
            target = b.expert_action
        else:
            b = self.replay.sample_demos(cfg.bc_batch_episodes, self.rng)
            target = b.action
        t = lambda x: torch.as_tensor(x, device=dev)  # noqa: E731
        obs, act, prev, goal = t(b.obs), t(target), t(b.prev_action), t(b.goal)
        horizon = act.shape[1]
        mu = privileged_input(cfg, t(b.mu), horizon, horizon)
        pin = actor_input(cfg.variant, cfg.history, obs, prev)
        with torch.no_grad():
            tool = _tool_of(self.critic, obs[:, :horizon])
        pi, _ = self.actor(pin[:, :horizon], goal, prev[:, :horizon],
                           **_with_tool(self.actor, tool))
        scale = self.actor.action_scale
        err = (((pi - act) / scale) ** 2).sum(-1)
        if not cfg.bc_q_filter:
            return err.mean(), 1.0
        with torch.no_grad():
            c_tool = _with_tool(self.critic, tool)
            q_demo, _ = self.critic(obs[:, :horizon], goal, act, prev[:, :horizon], mu, **c_tool)
            q_pi, _ = self.critic(obs[:, :horizon], goal, pi.detach(), prev[:, :horizon], mu,
                                  **c_tool)
            informed = t(b.expert_informed) if cfg.bc_q_filter_informed_only else None
            keep = q_filter_mask(q_demo[..., 0], q_pi[..., 0], informed).float()
        return (err * keep).sum() / keep.sum().clamp(min=1.0), keep.mean().item()

    @torch.no_grad()
    def _soft_update(self) -> None:
        tau = self.cfg.tau
        pairs = [(self.actor, self.actor_target, tau), (self.critic, self.critic_target, tau)]
        if self.actor_ema is not None:
            pairs.append((self.actor, self.actor_ema, 1.0 - self.cfg.actor_ema))
        for net, tgt, rate in pairs:
            for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                tp.lerp_(p, rate)
            for bn, tb in zip(net.buffers(), tgt.buffers(), strict=True):
                tb.copy_(bn)

    @property
    def policy_actor(self) -> nn.Module:
        """The actor that is evaluated and saved as the run's policy: the moving average
        where ``actor_ema`` is on, else the online actor."""
        return self.actor_ema if self.actor_ema is not None else self.actor

    def evaluate(self, dynamics: str = "train", episodes: int | None = None, seed=1_000_000):
        """Deterministic evaluation on fresh seeds (training or held-out dynamics)."""
        env = make_eval_env(self.cfg.env_id, self.cfg.env_kwargs, dynamics)
        try:
            return evaluate_actor(self.policy_actor, self.cfg.variant, self.cfg.history, env,
                                  episodes or self.cfg.eval_episodes, seed, self.device)
        finally:
            env.close()

    # --- loop ---------------------------------------------------------------------------------
    def train(self) -> dict:
        """Run until ``total_env_steps`` (or ``max_wall_s`` of training wall time); returns the
        last evaluation."""
        cfg = self.cfg
        bar = tqdm(total=cfg.total_env_steps, initial=self.env_steps, unit="step",
                   disable=not cfg.progress, file=sys.stderr, dynamic_ncols=True)
        start, steps0 = time.perf_counter(), self.env_steps
        self._wall_start = start - self._wall_before
        self._last_eval = {}
        self._waited_s, self._row_wall = 0.0, self._wall_s()  # the learner's wait per row
        if cfg.collector == "process":
            self._start_remote()  # the initial demonstrations too, and the first request
        else:
            for _ in range(self._initial_demos()):
                self.collect_demo()
        bar.update(self.env_steps - steps0)
        try:
            self._train_loop(bar, start, steps0)
        finally:
            bar.close()
            if self.remote is not None:
                self.remote.close()
                self.remote = None
        self.save()
        self._save_final()
        return self._last_eval

    def _train_loop(self, bar, start: float, steps0: int) -> None:
        """Iterations of collection, updates, evaluation and checkpoints until the budget."""
        cfg = self.cfg
        per_iter = cfg.n_envs * self.horizon
        stats: dict = {}
        while self.env_steps + per_iter <= cfg.total_env_steps:
            if cfg.max_wall_s and self._wall_s() >= cfg.max_wall_s:
                print(f"wall-time budget of {cfg.max_wall_s:g} s reached at "
                      f"{self.env_steps} env steps; saving the final policy", file=sys.stderr)
                break
            if self.remote is not None:
                stats, added = self._collect_remote()
            else:
                stats, added = self._store_all(self.collector.iteration(
                    self._warm(self.iteration), cfg.total_env_steps - self.env_steps))
            bar.update(added)
            if self.replay.size * self.horizon >= cfg.batch_episodes and \
                    self.iteration * cfg.n_envs >= cfg.warmup_episodes:
                stats["lr_scale"] = self._set_learning_rates()
                for _ in range(cfg.updates_per_iteration):
                    stats.update(self.update())
            self.iteration += 1
            if self.iteration % cfg.eval_every == 0:
                ev = self.evaluate()
                self._last_eval = {"eval_success_0.05": ev.success_005,
                                   "eval_success_0.07": ev.success_007,
                                   "eval_distance_m": ev.final_distance_m}
                elapsed = time.perf_counter() - start
                if self.remote is not None:  # which side binds: the learner waiting or not
                    wall = self._wall_s()
                    stats["learner_wait_share"] = self._waited_s / max(wall - self._row_wall,
                                                                       1e-9)
                    self._waited_s, self._row_wall = 0.0, wall
                row = {"iteration": self.iteration, "env_steps": self.env_steps,
                       "updates": self.updates,
                       "wall_s": round(self._wall_s(), 1),
                       "env_steps_per_s": round((self.env_steps - steps0) / max(elapsed, 1e-9), 1),
                       **{k: round(v, 5) for k, v in stats.items()}, **self._last_eval}
                self._log(row)
                bar.set_postfix(success=f"{ev.success_005:.2f}", q=f"{stats.get('q_mean', 0):.2f}")
                if ev.success_005 >= self.best_success:
                    self.best_success = ev.success_005
                    self._save_best()
            if self.iteration % cfg.checkpoint_every == 0:
                self.save()

    def lr_scale(self) -> float:
        """Learning-rate multiplier at the current env step: 1 until ``lr_decay_from`` of the
        budget, then a cosine down to ``lr_final`` at ``total_env_steps``."""
        cfg = self.cfg
        start = cfg.lr_decay_from * cfg.total_env_steps
        if self.env_steps <= start or cfg.lr_decay_from >= 1.0:
            return 1.0
        frac = min(1.0, (self.env_steps - start) / max(cfg.total_env_steps - start, 1.0))
        return cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def _set_learning_rates(self) -> float:
        scale = self.lr_scale()
        cfg = self.cfg
        for opt, lr in ((self.actor_opt, cfg.actor_lr), (self.critic_opt, cfg.critic_lr)):
            for group in opt.param_groups:
                group["lr"] = lr * scale
        return scale

    def _log(self, row: dict) -> None:
        path = self.run_dir / "progress.csv"
        self.history_rows.append(row)
        fields = list(row)
        if path.exists():  # keep the file's columns (a resumed run may log more or fewer keys)
            with open(path, newline="") as f:
                fields = next(csv.reader(f), None) or fields
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.cfg.tensorboard:
            self._tb_write(row)

    def _tb_write(self, row: dict) -> None:
        """The progress row as TensorBoard scalars against env steps (``eval/`` for the
        periodic evaluations, ``train/`` for the rest). A resumed run first purges what was
        logged after its checkpoint, as :meth:`_trim_progress` does for the CSV."""
        if self._tb is None:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"),
                                     purge_step=self._resumed_at)
        step = int(row["env_steps"])
        for key, value in row.items():
            if key in ("iteration", "env_steps") or isinstance(value, bool) or \
                    not isinstance(value, (int, float, np.integer, np.floating)):
                continue
            group = "eval" if key.startswith("eval_") else "train"
            self._tb.add_scalar(f"{group}/{key}", float(value), step)
        self._tb.flush()

    # --- persistence --------------------------------------------------------------------------
    def _model_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            **({"mu_head": self.mu_head.state_dict()} if self.mu_head is not None else {}),
            **({"actor_ema": self.actor_ema.state_dict()} if self.actor_ema is not None
               else {}),
        }

    def save(self) -> Path:
        """Atomic checkpoint of everything needed to resume exactly."""
        groups = self._model_tensors()
        a_t, a_meta = optimizer_to_tensors(self.actor_opt)
        c_t, c_meta = optimizer_to_tensors(self.critic_opt)
        groups["actor_opt"], groups["critic_opt"] = a_t, c_t
        groups["torch_rng"] = {"cpu": torch.get_rng_state()}
        state = {
            "iteration": self.iteration, "env_steps": self.env_steps, "updates": self.updates,
            "best_success": self.best_success, "numpy_rng": self.rng.bit_generator.state,
            "actor_opt": a_meta, "critic_opt": c_meta, "config": self.cfg.to_dict(),
            "dims": self._dims(), "wall_s": self._wall_s(),
            **({"collector_rng": self._collector_rng} if self.cfg.collector == "process"
               else {}),
        }
        path = self.run_dir / "checkpoints" / f"iter_{self.iteration:07d}"
        arrays = {"replay": self.replay.state_dict()}
        if self._collector_actor is not None:  # the weights of the collector's next request
            arrays["collector_actor"] = self._collector_actor
        save_checkpoint(path, groups, arrays, state)
        old = sorted(p for p in path.parent.iterdir() if p.is_dir() and p.name.startswith("iter_")
                     and not p.name.endswith(".tmp"))
        for p in old[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(p, ignore_errors=True)
        return path

    def _dims(self) -> dict:
        return {"obs_dim": self.obs_dim, "goal_dim": self.goal_dim, "act_dim": self.act_dim,
                "mu_dim": self.mu_dim, "horizon": self.horizon, "variant": self.cfg.variant,
                "hidden": self.cfg.hidden, "history": self.cfg.history,
                "kinematic_features": isinstance(self.actor, Featurized),
                # only where it differs, so that checkpoints from before the field still load
                **({"critic_hidden": self.cfg.critic_hidden}
                   if self.cfg.critic_hidden not in (0, self.cfg.hidden) else {}),
                **({"mu_head": True} if self.mu_head is not None else {})}

    def load(self, path: Path) -> None:
        """Restore a checkpoint (networks, optimisers, replay, counters, RNGs)."""
        tg, ng, state = load_checkpoint(path)
        changed = network_changes(state.get("config") or {}, self.cfg)
        if changed:
            raise CheckpointError(
                f"{path}: --resume keeps the options that shape the networks; "
                + "; ".join(changed)
            )
        if state.get("dims") != self._dims():
            raise CheckpointError(
                f"{path}: checkpoint was made for {state.get('dims')}, this configuration has "
                f"{self._dims()}"
            )
        try:
            self.actor.load_state_dict(strip_kinematics(tg["actor"]))
            self.critic.load_state_dict(strip_kinematics(tg["critic"]))
            self.actor_target.load_state_dict(strip_kinematics(tg["actor_target"]))
            self.critic_target.load_state_dict(strip_kinematics(tg["critic_target"]))
            if self.mu_head is not None:
                self.mu_head.load_state_dict(tg["mu_head"])
            if self.actor_ema is not None:  # a run that had none starts its average here
                self.actor_ema.load_state_dict(
                    strip_kinematics(tg["actor_ema"]) if "actor_ema" in tg
                    else self.actor.state_dict())
            optimizer_from_tensors(self.actor_opt, tg["actor_opt"], state["actor_opt"])
            optimizer_from_tensors(self.critic_opt, tg["critic_opt"], state["critic_opt"])
            self.replay.load_state_dict(ng["replay"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"{path}: checkpoint does not match the networks ({e})"
            ) from None
        torch.set_rng_state(tg["torch_rng"]["cpu"])
        if self.cfg.collector == "process":  # else a fresh collector generator and weights
            if "collector_rng" in state:
                self._collector_rng = state["collector_rng"]
            self._collector_actor = ng.get("collector_actor")
        self.rng.bit_generator.state = state["numpy_rng"]
        self.iteration, self.env_steps = state["iteration"], state["env_steps"]
        self.updates, self.best_success = state["updates"], state["best_success"]
        self._wall_before = float(state.get("wall_s", 0.0))
        self._resumed_at = self.env_steps + 1
        self._trim_progress()

    def _wall_s(self) -> float:
        """Training wall time of the run so far, across resumes (s)."""
        if self._wall_start is None:
            return self._wall_before
        return time.perf_counter() - self._wall_start

    def _trim_progress(self) -> None:
        """Drop progress rows logged after the checkpoint being resumed: the resumed run logs
        those iterations again (exactly: resume restores every RNG), so the curve has no
        duplicates. The file is replaced atomically."""
        path = self.run_dir / "progress.csv"
        if not path.is_file():
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, list(reader)
        keep = [r for r in rows if r.get("iteration", "").isdigit()
                and int(r["iteration"]) <= self.iteration]
        if fields is None or len(keep) == len(rows):
            return
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(keep)
        tmp.replace(path)

    def _save_best(self) -> None:
        save_checkpoint(self.run_dir / "best", {"actor": self.policy_actor.state_dict()}, {},
                        {"config": self.cfg.to_dict(), "dims": self._dims(),
                         "iteration": self.iteration, "success": self.best_success})

    def _save_final(self) -> None:
        save_checkpoint(self.run_dir / "final", {"actor": self.policy_actor.state_dict()}, {},
                        {"config": self.cfg.to_dict(), "dims": self._dims(),
                         "iteration": self.iteration, "env_steps": self.env_steps,
                         "wall_s": round(self._wall_s(), 1)})

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self.remote is not None:
            self.remote.close()
            self.remote = None
        if self.collector is not None:
            self.collector.close()


def load_actor_from_run(run_dir, which: str = "best"):
    """The actor of a finished or running run (``best``, ``final`` or ``latest`` checkpoint);
    from a checkpoint of a run with ``actor_ema``, its moving average, as ``final`` holds
    (``latest-online``: the latest checkpoint's online actor instead)."""
    run_dir = Path(run_dir)
    if which in ("latest", "latest-online"):
        path = latest_checkpoint(run_dir)
        if path is None:
            raise CheckpointError(f"{run_dir}: no checkpoint")
    else:
        path = run_dir / which
        if not path.is_dir():
            path = latest_checkpoint(run_dir) if which == "best" else None
            if path is None:
                raise CheckpointError(f"{run_dir}: no '{which}' checkpoint")
    tg, _, state = load_checkpoint(path)
    values = dict(state["config"])
    # Runs from before kinematic features existed have unprefixed actor weights.
    values.setdefault("kinematic_features", any(k.startswith("net.") for k in tg["actor"]))
    cfg = build_config(RDPGConfig, values)
    d = state["dims"]
    scale = [1.0] * d["act_dim"]  # replaced by the saved buffer below
    actor = build_actor(cfg, d["obs_dim"], d["goal_dim"], d["act_dim"], scale)
    try:
        group = "actor" if which == "latest-online" else "actor_ema"
        actor.load_state_dict(strip_kinematics(tg.get(group, tg["actor"])))
    except RuntimeError as e:
        raise CheckpointError(f"{path}: actor weights do not match its config ({e})") from None
    actor.eval()
    return actor, cfg

