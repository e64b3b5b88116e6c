"""Episode collection for the RDPG trainer: in the learner's process, or pipelined beside it.

:class:`Collector` owns the training envs, the scripted demonstrator and the exploration
noise, and rolls out whole episodes with an actor. The trainer either calls it between its
updates (``collector: inline``, one core) or runs it in a process of its own
(:class:`CollectorProcess`, ``collector: process``): while the learner takes the updates of
iteration ``i``, the collector gathers the episodes of iteration ``i + 1`` with the actor as
it was before those updates (one iteration stale, as in distributed actor-learner setups such
as Ape-X, but synchronous: the learner waits for each iteration's episodes, so a run is
reproducible and resumes exactly). On two cores the loop then costs the larger of collection
and updates per iteration instead of their sum.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
import warnings
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import sim  # noqa: F401  (registers the envs in the collector process too)
from meta_train.common.config import ConfigError
from meta_train.common.policies import BatchPolicy
from meta_train.common.runs import RunError
from meta_train.rdpg.config import RDPGConfig
from meta_train.rdpg.teacher import INFO_KEY as EXPERT_KEY
from meta_train.rdpg.teacher import INFORMED_KEY, ExpertActionInfo
from sim.planner import make_teacher


class CollectorError(RunError):
    """The collector process failed or exited; the message carries its traceback."""


def make_env(cfg: RDPGConfig, **extra):
    """One training env for the config (nominal dynamics for ff_norand; expert labels in the
    info when ``expert_labels``)."""
    kw = dict(cfg.env_kwargs)
    if "max_episode_steps" in kw:
        raise ConfigError("env_kwargs: max_episode_steps only wraps the env in gymnasium's "
                          "TimeLimit, the push envs truncate themselves at their own length; "
                          "set episode_steps instead")
    if cfg.variant == "ff_norand":
        kw["randomize"] = False
    kw.update(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            env = gym.make(cfg.env_id, **kw)
        except TypeError as e:  # an unknown or mistyped env_kwargs entry
            raise ConfigError(f"env_kwargs {kw}: {e}") from None
    if cfg.expert_labels:
        try:
            env = ExpertActionInfo(
                env, knowledge=cfg.teacher, prior_friction=cfg.teacher_prior_friction
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return env


@dataclass
class Rollout:
    """``n`` whole episodes as collected: ``obs [n, T+1, o]``, ``action [n, T, a]``,
    ``achieved_goal [n, T+1, g]``, ``desired_goal [n, T, g]``, ``mu [n, mu_dim]``, the
    teacher's label of every visited state ``expert_action [n, T, a]`` (None without labels)
    and whether it knew the true dynamics ``expert_informed [n, T]``; ``demo`` marks scripted
    demonstrations."""

    obs: np.ndarray
    action: np.ndarray
    achieved_goal: np.ndarray
    desired_goal: np.ndarray
    mu: np.ndarray
    expert_action: np.ndarray | None
    expert_informed: np.ndarray
    demo: bool = False

    @property
    def n(self) -> int:
        return self.action.shape[0]

    @property
    def env_steps(self) -> int:
        return self.action.shape[0] * self.action.shape[1]


class Collector:
    """Rolls out training episodes: ``n_envs`` with the actor plus exploration, and scripted
    demonstrations.

    Args:
        cfg: the run's configuration.
        actor: the actor to act with (the trainer's own, or a copy in the collector process).
        rng: the generator of env seeds, exploration noise and demonstration draws.
        device: the actor's device.
        dims: ``obs_dim``, ``goal_dim``, ``act_dim``, ``mu_dim`` and ``horizon``.
        action_scale: the action bound per dimension (symmetric).
    """

    def __init__(self, cfg: RDPGConfig, actor: nn.Module, rng: np.random.Generator, device,
                 dims: dict, action_scale: np.ndarray) -> None:
        self.cfg, self.actor, self.rng, self.device = cfg, actor, rng, torch.device(device)
        self.obs_dim, self.goal_dim = dims["obs_dim"], dims["goal_dim"]
        self.act_dim, self.mu_dim, self.horizon = dims["act_dim"], dims["mu_dim"], dims["horizon"]
        self.action_scale = np.asarray(action_scale, np.float32)
        fns = [lambda: make_env(cfg) for _ in range(cfg.n_envs)]
        vec_cls = gym.vector.AsyncVectorEnv if cfg.vector == "async" else gym.vector.SyncVectorEnv
        self.envs = vec_cls(fns)
        self.demo_env = self.demo_policy = None
        if cfg.demo_episodes or cfg.demo_fraction:
            self.demo_env = make_env(cfg).unwrapped  # a push env: the trainer checked
            self.demo_policy = make_teacher(
                self.demo_env, cfg.teacher, cfg.teacher_prior_friction
            )

    def rollout(self, warm: bool) -> Rollout:
        """One episode per env with exploration (uniformly random actions while ``warm``)."""
        cfg, n, t_max = self.cfg, self.cfg.n_envs, self.horizon
        seeds = [int(s) for s in self.rng.integers(0, 2**31 - 1, size=n)]
        obs, info = self.envs.reset(seed=seeds)
        mu = np.asarray(info.get("mu", np.zeros((n, 0))), np.float32).reshape(n, self.mu_dim)
        o = np.zeros((n, t_max + 1, self.obs_dim), np.float32)
        ag = np.zeros((n, t_max + 1, self.goal_dim), np.float32)
        dg = np.zeros((n, t_max, self.goal_dim), np.float32)
        acts = np.zeros((n, t_max, self.act_dim), np.float32)
        labels = np.zeros((n, t_max, self.act_dim), np.float32) if cfg.expert_labels else None
        informed = np.ones((n, t_max), bool)
        o[:, 0], ag[:, 0] = obs["observation"], obs["achieved_goal"]
        policy = BatchPolicy(self.actor, cfg.variant, cfg.history, n, self.device)
        ou = np.zeros((n, self.act_dim))
        for t in range(t_max):
            dg[:, t] = obs["desired_goal"]
            if labels is not None:
                labels[:, t] = info[EXPERT_KEY]
                informed[:, t] = info[INFORMED_KEY]
            white = self.rng.normal(0, cfg.noise_std, (n, self.act_dim))
            if cfg.noise_type == "ou":  # x <- x - theta x + sigma N(0, 1)  (Lillicrap et al.)
                ou = ou * (1.0 - cfg.ou_theta) + white
                noise = ou
            else:
                noise = white
            if warm:
                a = self.rng.uniform(-1, 1, (n, self.act_dim)).astype(np.float32)
                a = np.clip(0.5 * a + noise, -1, 1) * self.action_scale
            else:
                a = policy(obs["observation"], obs["desired_goal"])
                a = a + noise * self.action_scale
                rand = self.rng.uniform(-1, 1, a.shape) * self.action_scale
                mask = self.rng.random((n, 1)) < cfg.random_eps
                a = np.where(mask, rand, a)
                a = np.clip(a, -self.action_scale, self.action_scale).astype(np.float32)
            policy.observe_action(a)
            obs, _, _, _, info = self.envs.step(a)
            acts[:, t] = a
            o[:, t + 1], ag[:, t + 1] = obs["observation"], obs["achieved_goal"]
        return Rollout(o, acts, ag, dg, mu, labels, informed)

    def demo(self) -> Rollout:
        """One scripted demonstration with OU exploration noise (a rollout of one episode)."""
        if self.demo_env is None:
            raise ConfigError("demonstrations need demo_episodes or demo_fraction")
        cfg, env, t_max = self.cfg, self.demo_env, self.horizon
        obs, info = env.reset(seed=int(self.rng.integers(0, 2**31 - 1)))
        self.demo_policy.reset()
        o = np.zeros((t_max + 1, self.obs_dim), np.float32)
        ag = np.zeros((t_max + 1, self.goal_dim), np.float32)
        dg = np.zeros((t_max, self.goal_dim), np.float32)
        acts = np.zeros((t_max, self.act_dim), np.float32)
        labels = np.zeros((t_max, self.act_dim), np.float32)
        informed = np.ones(t_max, bool)
        o[0], ag[0] = obs["observation"], obs["achieved_goal"]
        ou = np.zeros(self.act_dim)
        for t in range(t_max):
            dg[t] = obs["desired_goal"]
            ou = ou * (1.0 - cfg.ou_theta) + self.rng.normal(0, 0.5 * cfg.noise_std, self.act_dim)
            labels[t] = self.demo_policy(obs)
            informed[t] = self.demo_policy.knows_dynamics
            a = np.clip(labels[t] + ou * self.action_scale, -self.action_scale,
                        self.action_scale).astype(np.float32)
            obs, _, _, _, info = env.step(a)
            acts[t] = a
            o[t + 1], ag[t + 1] = obs["observation"], obs["achieved_goal"]
        mu = np.asarray(info["mu"], np.float32)
        return Rollout(o[None], acts[None], ag[None], dg[None], mu[None], labels[None],
                       informed[None], demo=True)

    def iteration(self, warm: bool, room: int) -> list[Rollout]:
        """One iteration's episodes: a rollout, then with probability ``demo_fraction`` a
        demonstration where ``room`` (env steps left in the budget after the rollout) has
        space for one. The inline trainer draws in the same order."""
        out = [self.rollout(warm)]
        if (self.demo_env is not None and self.rng.random() < self.cfg.demo_fraction
                and room - out[0].env_steps >= self.horizon):
            out.append(self.demo())
        return out

    def close(self) -> None:
        self.envs.close()
        if self.demo_env is not None:
            self.demo_env.close()


def _serve(conn, cfg: RDPGConfig, actor: nn.Module, dims: dict, action_scale: np.ndarray,
           rng_state: dict) -> None:
    """The collector process: answer ``("iteration", actor_state, warm, room)`` and
    ``("demos", n)`` with ``("ok", rollouts, rng_state)`` until ``("close",)`` or the learner's
    end of the pipe; any failure goes back as ``("error", traceback)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the learner handles Ctrl-C and closes us
    torch.set_num_threads(1)
    collector = None
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = rng_state
        collector = Collector(cfg, actor, rng, "cpu", dims, action_scale)
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg[0] == "close":
                return
            try:
                if msg[0] == "iteration":
                    _, state, warm, room = msg
                    actor.load_state_dict(
                        {k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
                    out = collector.iteration(warm, room)
                elif msg[0] == "demos":
                    out = [collector.demo() for _ in range(msg[1])]
                else:
                    raise ValueError(f"unknown request {msg[0]!r}")
                conn.send(("ok", out, rng.bit_generator.state))
            except Exception:  # noqa: BLE001  (reported to the learner, which raises it)
                conn.send(("error", traceback.format_exc()))
    except Exception:  # noqa: BLE001  (set-up failed)
        try:
            conn.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if collector is not None:
            collector.close()


class CollectorProcess:
    """A :class:`Collector` in a process of its own, one request in flight at a time.

    Args:
        cfg: the run's configuration, validated (``vector`` is ``sync``: the process is a
            daemon, which cannot start env processes of its own).
        actor: a CPU actor of the run's architecture (copied into the process; its weights
            come with every request).
        dims, action_scale: as for :class:`Collector`.
        rng_state: the state of the collector's random generator (a resumed run passes the
            checkpoint's, so that it continues exactly).
    """

    def __init__(self, cfg: RDPGConfig, actor: nn.Module, dims: dict, action_scale: np.ndarray,
                 rng_state: dict) -> None:
        ctx = mp.get_context("spawn")  # a fresh interpreter: no forked torch or PyBullet state
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="rdpg-collector", daemon=True,
                                 args=(child, cfg, actor, dims, action_scale, rng_state))
        self._proc.start()
        child.close()
        self.in_flight = False

    def submit(self, actor_state: dict[str, np.ndarray], warm: bool, room: int) -> None:
        """Start collecting one iteration's episodes with these actor weights."""
        self._send(("iteration", actor_state, warm, room))

    def demos(self, n: int) -> tuple[list[Rollout], dict]:
        """``n`` demonstrations, waited for."""
        self._send(("demos", n))
        return self.receive()

    def receive(self) -> tuple[list[Rollout], dict]:
        """Wait for the request in flight: its rollouts and the generator state after them."""
        if not self.in_flight:
            raise CollectorError("no collection in flight")
        try:
            msg = self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(timeout=5.0)
            raise CollectorError(
                f"the collector process exited (exit code {self._proc.exitcode})") from None
        self.in_flight = False
        if msg[0] != "ok":
            raise CollectorError(f"the collector process failed:\n{msg[1]}")
        return msg[1], msg[2]

    def _send(self, msg: tuple) -> None:
        if self.in_flight:
            raise CollectorError("a collection is already in flight")
        try:
            self._conn.send(msg)
        except (BrokenPipeError, OSError):
            raise CollectorError(
                f"the collector process exited (exit code {self._proc.exitcode})") from None
        self.in_flight = True

    def close(self) -> None:
        """Stop the process (a collection in flight is dropped)."""
        try:
            self._conn.send(("close",))
        except (BrokenPipeError, OSError):
            pass
        self._proc.join(timeout=10.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5.0)
        self._conn.close()
