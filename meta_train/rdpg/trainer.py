"""RDPG + HER with an omniscient critic over randomized dynamics (Peng et al. 2017).

The loop, top to bottom (CleanRL style):

1. collect ``n_envs`` whole episodes with the current actor plus exploration noise; store them
   with the dynamics ``mu`` they were sampled under;
2. update the observation normalisers;
3. ``updates_per_iteration`` times: sample whole episodes, relabel goals with HER, and take one
   gradient step of the critic (TD targets from target networks, back-propagation through time
   over the whole episode) and of the actor (deterministic policy gradient through the critic,
   plus behaviour cloning of the teacher's labels where the critic prefers them); Polyak-average
   the target networks;
4. evaluate, log, checkpoint.

With ``collector: process`` step 1 runs in a process of its own (:mod:`.collector`): the
episodes of iteration ``i + 1`` are collected, with the actor as it was before the updates of
iteration ``i``, while those updates run; on two cores an iteration then costs the larger of
the two instead of their sum. The learner still waits for each iteration's episodes, so the
run is as reproducible, and resumes as exactly, as an inline one.

The critic sees ``mu`` (omniscient); the actor never does and must infer the dynamics from its
history (recurrent branch over ``(s_t, a_{t-1})``). Episodes end only by time limit, so every
transition bootstraps (time-limit ends are not terminal). Baselines from Peng's Table II share
the loop: ``ff`` (feedforward actor), ``ff_history`` (feedforward over the last k states and
actions), ``ff_norand`` (feedforward, trained on nominal dynamics only).
"""

from __future__ import annotations

import copy
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

import sim  # noqa: F401  (registers the envs)
from meta_train.common.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from meta_train.common.config import ConfigError, drop_removed, save_config
from meta_train.common.device import resolve_device
from meta_train.common.evaluation import evaluate_actor, make_eval_env
from meta_train.common.kinematics import Featurized, strip_kinematics
from meta_train.common.networks import FeedforwardCritic, RecurrentCritic
from meta_train.common.policies import (
    REMOVED_OPTIONS,
    actor_input,
    build_actor,
    push_features,
)
from meta_train.common.runs import ProgressLog, default_run_name
from meta_train.rdpg.collector import Collector, CollectorProcess, Rollout, make_env
from meta_train.rdpg.config import RDPGConfig
from meta_train.rdpg.replay import EpisodeReplay

#: Options the saved networks' shapes or inputs depend on: ``--resume`` must keep them.
NETWORK_FIELDS = ("env_id", "variant", "history", "kinematic_features", "hidden",
                  "critic_hidden", "omniscient_critic")


def network_changes(saved: dict, cfg: RDPGConfig) -> list[str]:
    """``--flag: run X, now Y`` for each network-shaping option that differs between a saved
    config and ``cfg`` (a field missing from an older checkpoint counts as its default)."""
    defaults = RDPGConfig()
    out = []
    for name in NETWORK_FIELDS:
        was, now = saved.get(name, getattr(defaults, name)), getattr(cfg, name)
        if was != now:
            out.append(f"--{name.replace('_', '-')}: run {was!r}, now {now!r}")
    return out


def td_target(reward: torch.Tensor, q_next: torch.Tensor, gamma: float,
              clip: bool) -> torch.Tensor:
    """TD targets ``r_t + gamma * Q'(s_{t+1}, ...)`` of whole episodes (``[B, T]`` each).

    Episodes end only at the time limit, which is not a property of the state the critic sees:
    the last transition bootstraps like every other. ``clip`` bounds the targets to the
    returns rewards in ``[-1, 0]`` allow.
    """
    y = reward + gamma * q_next
    return y.clamp(-1.0 / (1.0 - gamma), 0.0) if clip else y


def build_critic(cfg: RDPGConfig, obs_dim, goal_dim, act_dim, mu_dim, scale):
    """Recurrent omniscient critic for the LSTM policy, feedforward for the baselines."""
    feats = push_features(cfg.actor_spec(), act_dim)
    eo, eg = (feats.extra_obs, feats.extra_goal) if feats else (0, 0)
    cls = RecurrentCritic if cfg.variant == "lstm" else FeedforwardCritic
    net = cls(obs_dim + eo, goal_dim + eg, act_dim, mu_dim if cfg.omniscient_critic else 0,
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
        self.run_dir = Path(cfg.run_dir) / (
            cfg.run_name or default_run_name(cfg.env_id, "rdpg_her", cfg.variant, cfg.seed))
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
        self.actor = build_actor(cfg.actor_spec(), self.obs_dim, self.goal_dim, self.act_dim,
                                 scale)
        self.critic = build_critic(cfg, self.obs_dim, self.goal_dim, self.act_dim, self.mu_dim,
                                   scale)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        # the moving average of the actor that evaluations and saved policies use (--actor-ema)
        self.actor_ema = copy.deepcopy(self.actor) if cfg.actor_ema > 0 else None
        self._actor_params = list(self.actor.parameters())
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
        self.progress = ProgressLog(self.run_dir, tensorboard=cfg.tensorboard)
        self._last_eval: dict = {}
        self._wall_before, self._wall_start = 0.0, None
        if resume:
            ckpt = latest_checkpoint(self.run_dir)
            if ckpt is None:
                raise CheckpointError(f"--resume: no complete checkpoint in {self.run_dir}")
            self.load(ckpt)
        save_config(cfg, self.run_dir / "config.yaml")

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
        actor = build_actor(cfg.actor_spec(), self.obs_dim, self.goal_dim, self.act_dim,
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
    def _critic_mu(self, mu: torch.Tensor, length: int) -> torch.Tensor | None:
        """The critic's privileged input at positions ``0 .. length-1`` of whole episodes,
        ``[B, length, mu_dim]``: each episode's ``mu`` (``[B, mu_dim]``) where the critic is
        omniscient, else None."""
        if not (self.cfg.omniscient_critic and mu.shape[-1]):
            return None
        return mu[:, None].expand(-1, length, -1)

    def update(self) -> dict:
        """One critic and one actor gradient step on a batch of whole, relabelled episodes."""
        cfg, dev = self.cfg, self.device
        b = self.replay.sample(cfg.batch_episodes, self.rng)
        t = lambda x: torch.as_tensor(x, device=dev)  # noqa: E731
        obs, act, prev, goal, rew = t(b.obs), t(b.action), t(b.prev_action), t(b.goal), t(b.reward)
        horizon = act.shape[1]
        mu = self._critic_mu(t(b.mu), horizon + 1)
        pin = actor_input(cfg.variant, cfg.history, obs, prev)
        with torch.no_grad():
            tool = _tool_of(self.critic, obs)
            # the target critic's value of each next state, with the transition's own goal
            g = torch.cat([goal[:, :1], goal], dim=1)
            pi, _ = self.actor_target(pin, g, prev, **_with_tool(self.actor_target, tool))
            q_next, _ = self.critic_target(obs, g, pi, prev, mu,
                                           **_with_tool(self.critic_target, tool))
            y = td_target(rew, q_next[:, 1:, 0], cfg.gamma, cfg.clip_target)
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
        actor_loss = -q_pi.mean() + cfg.action_l2 * ((pi / scale) ** 2).mean()
        out = {}
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
        label of every state of every stored episode, the actor's own included (DAgger).
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
        mu = self._critic_mu(t(b.mu), horizon)
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
            keep = (q_demo[..., 0] > q_pi[..., 0]).float()
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
                self.progress.log(row)
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

    # --- persistence --------------------------------------------------------------------------
    def _model_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
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
                   if self.cfg.critic_hidden not in (0, self.cfg.hidden) else {})}

    def load(self, path: Path) -> None:
        """Restore a checkpoint (networks, optimisers, replay, counters, RNGs)."""
        tg, ng, state = load_checkpoint(path)
        saved = drop_removed(state.get("config") or {}, REMOVED_OPTIONS, f"checkpoint {path}")
        changed = network_changes(saved, self.cfg)
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
        self.progress.trim(self.iteration, self.env_steps)

    def _wall_s(self) -> float:
        """Training wall time of the run so far, across resumes (s)."""
        if self._wall_start is None:
            return self._wall_before
        return time.perf_counter() - self._wall_start

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
        self.progress.close()
        if self.remote is not None:
            self.remote.close()
            self.remote = None
        if self.collector is not None:
            self.collector.close()

