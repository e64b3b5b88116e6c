"""Rollout datasets: whole episodes of a policy over randomized dynamics, with ``mu``.

What several methods learn from: the dynamics estimator regresses ``mu`` from the history,
forward models predict the next state from the state and the action. A dataset holds, per
episode, the observations, the executed actions (the policy's, plus exploration), the goals,
the normalised dynamics ``mu`` the env sampled, the step of the first contact with the puck,
the outcome and the reset seed, so any episode can be replayed. Datasets are saved as one
``.npz`` (written atomically) with their provenance.

The policy is a trained actor (:class:`ActorPolicy`, from a run) or an exported model run
through the robot's own runtime (:class:`RuntimePolicy`, e.g. ``models/pusher_policy.onnx``).
Episode ``i`` resets with seed ``seed + i`` and draws its exploration from a generator of its
own, so a dataset is the same whether one process collects it or several do.

    policy = RuntimePolicy("models/pusher_policy.onnx")
    data = collect_rollouts(policy, "train", episodes=600, seed=1, noise_std=0.1, workers=2)
    data.save("data/pusher_train.npz")
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from meta_train.common.evaluation import make_eval_env
from meta_train.common.files import atomic_write
from meta_train.common.policies import BatchPolicy, PolicyRun


class DatasetError(ValueError):
    """A rollout dataset file is missing, unreadable or inconsistent."""


class ActorPolicy:
    """A trained actor (CPU) stepping one env, with its recurrent state or frame history.

    Args:
        actor: e.g. from :func:`~meta_train.common.policies.load_actor_from_run`.
        run: the actor's provenance (its env and variant).
    """

    def __init__(self, actor: nn.Module, run: PolicyRun) -> None:
        self.run = run
        self.env_id, self.env_kwargs = run.env_id, dict(run.env_kwargs)
        self.source = str(run.checkpoint)
        self._actor = actor
        self._policy = BatchPolicy(actor, run.variant, run.history, 1, "cpu")

    def reset(self) -> None:
        self._policy.reset()

    def act(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The deterministic action for one observation and goal."""
        return self._policy(obs[None], goal[None])[0]

    def observe(self, executed: np.ndarray) -> None:
        """The action actually executed (the next step's previous action)."""
        self._policy.observe_action(executed[None])

    def __getstate__(self) -> dict:  # the actor travels to worker processes by its weights
        return {"actor": self._actor, "run": self.run}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["actor"], state["run"])


class RuntimePolicy:
    """An exported policy run as the robot runs it (:class:`meta_control.runtime.PolicyRuntime`:
    input checks, the ONNX graph, its recurrent state). An input the runtime refuses is held
    (zero offset, recurrent state reset), as the controller node does; ``refused`` counts them.

    Args:
        path: the ``.onnx`` file (its ``.json`` sidecar beside it).
    """

    def __init__(self, path: str | Path) -> None:
        from meta_control.runtime import PolicyRuntime

        self.path = Path(path)
        self._runtime = PolicyRuntime(self.path)
        meta = self._runtime.metadata
        self.env_id = meta.env_id
        self.env_kwargs = dict(meta.training_config.get("env_kwargs", {}))
        self.source = str(self.path)
        self.refused = 0

    def reset(self) -> None:
        self._runtime.reset()

    def act(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        from meta_control.runtime import InputRejected

        try:
            return self._runtime.step(obs, goal)
        except InputRejected:
            self.refused += 1
            self._runtime.reset()
            return np.zeros(self._runtime.metadata.act_dim)

    def observe(self, executed: np.ndarray) -> None:
        self._runtime.observe_action(executed)

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])


@dataclass
class Exploration:
    """How a dataset's actions depart from the policy's.

    Attributes:
        noise_std: std of Gaussian noise added to every action, as a fraction of the bound.
        probe_fraction: share of episodes that start with a probe: ``probe_steps`` steps of
            random joint motions (each joint's offset a random fraction of the bound, held
            ``probe_hold`` steps) before the policy takes over, which excites the arm's
            dynamics (gains, damping, masses) beyond what the policy's own motion does.
        probe_steps: length of a probe.
        probe_hold: steps each random offset is held.
    """

    noise_std: float = 0.1
    probe_fraction: float = 0.0
    probe_steps: int = 10
    probe_hold: int = 2

    def validate(self) -> None:
        if self.noise_std < 0 or not 0.0 <= self.probe_fraction <= 1.0 or \
                self.probe_steps < 0 or self.probe_hold < 1:
            raise ValueError(f"invalid exploration {self}")


@dataclass
class RolloutDataset:
    """``N`` episodes of ``T`` steps (arrays batch first).

    Attributes:
        obs: ``[N, T+1, obs_dim]`` observations (the last after the final action).
        action: ``[N, T, act_dim]`` executed actions.
        desired_goal: ``[N, goal_dim]`` the episode's goal.
        achieved_goal: ``[N, T+1, goal_dim]``.
        mu: ``[N, mu_dim]`` normalised dynamics (training ranges -> [-1, 1], sampling space).
        reset_seed: ``[N]`` the env's reset seed of each episode.
        contact_step: ``[N]`` index of the first observation after the robot first touched the
            puck, -1 where it never did.
        success: ``[N]`` puck within 0.05 m of the goal at the end.
        info: provenance: env id and kwargs, dynamics setting, exploration, policy, mu_names.
    """

    obs: np.ndarray
    action: np.ndarray
    desired_goal: np.ndarray
    achieved_goal: np.ndarray
    mu: np.ndarray
    reset_seed: np.ndarray
    contact_step: np.ndarray
    success: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    _ARRAYS = ("obs", "action", "desired_goal", "achieved_goal", "mu", "reset_seed",
               "contact_step", "success")

    def __post_init__(self) -> None:
        n, t = self.action.shape[:2]
        expect = {"obs": (n, t + 1), "desired_goal": (n,), "achieved_goal": (n, t + 1),
                  "mu": (n,), "reset_seed": (n,), "contact_step": (n,), "success": (n,)}
        for name, lead in expect.items():
            shape = getattr(self, name).shape
            if shape[: len(lead)] != lead:
                raise DatasetError(f"{name} has shape {shape}, expected {lead} first")

    def __len__(self) -> int:
        return self.action.shape[0]

    @property
    def horizon(self) -> int:
        """Steps per episode ``T``."""
        return self.action.shape[1]

    @property
    def prev_action(self) -> np.ndarray:
        """``[N, T+1, act_dim]``: the action before each observation (zeros at the start)."""
        return np.concatenate([np.zeros_like(self.action[:, :1]), self.action], axis=1)

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(state [N, T, o], action [N, T, a], next_state [N, T, o])`` for forward models."""
        return self.obs[:, :-1], self.action, self.obs[:, 1:]

    def subset(self, index: Sequence[int] | np.ndarray) -> RolloutDataset:
        """The episodes at ``index``, same provenance."""
        idx = np.asarray(index)
        return RolloutDataset(*(getattr(self, a)[idx] for a in self._ARRAYS),
                              info=dict(self.info))

    def inliers(self, quantile: float = 0.001, widen: float = 0.5) -> np.ndarray:
        """``[N]`` bool: episodes whose every observation lies within the robust range of the
        dataset (per feature, the ``quantile`` and ``1 - quantile`` quantiles widened by
        ``widen`` times their distance on each side). Exploration now and then throws the puck
        off the table; such an episode's observations are far outside anything the robot would
        run on and would swamp normalisation statistics."""
        flat = self.obs.reshape(-1, self.obs.shape[-1])
        lo, hi = np.quantile(flat, [quantile, 1.0 - quantile], axis=0)
        lo, hi = lo - widen * (hi - lo), hi + widen * (hi - lo)
        return ((self.obs >= lo) & (self.obs <= hi)).all(axis=(1, 2))

    @classmethod
    def concatenate(cls, parts: Sequence[RolloutDataset]) -> RolloutDataset:
        """One dataset of the parts' episodes, in order (the first part's provenance)."""
        if not parts:
            raise DatasetError("nothing to concatenate")
        return cls(*(np.concatenate([getattr(p, a) for p in parts]) for a in cls._ARRAYS),
                   info=dict(parts[0].info))

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.npz``) atomically (a temporary file in the same folder, then
        ``os.replace``): a killed write leaves any earlier file whole."""
        buffer = io.BytesIO()
        np.savez(buffer, **{a: getattr(self, a) for a in self._ARRAYS},
                 info=np.array(json.dumps(self.info)))
        atomic_write(Path(path), buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> RolloutDataset:
        """Read a dataset written by :meth:`save`.

        Raises:
            DatasetError: the file is missing, not a dataset, or inconsistent.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {a: z[a] for a in cls._ARRAYS}
                info = json.loads(str(z["info"]))
        except FileNotFoundError:
            raise DatasetError(f"{path}: no such dataset") from None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise DatasetError(f"{path}: not a rollout dataset ({e})") from None
        return cls(**arrays, info=info)


def _collect(policy, dynamics: str, seeds: Sequence[int], exploration: Exploration,
             env_kwargs: dict[str, Any], sample_ranges: dict[str, Sequence[float]] | None,
             base_seed: int) -> RolloutDataset:
    """The episodes of ``seeds`` (one process)."""
    kwargs = dict(env_kwargs)
    if sample_ranges:
        kwargs["sample_ranges"] = dict(sample_ranges)
    env = make_eval_env(policy.env_id, kwargs, dynamics)
    try:
        horizon, n = env.max_episode_steps, len(seeds)
        scale = env.action_space.high.astype(np.float64)
        n_o, n_a = env.observation_space["observation"].shape[0], env.action_space.shape[0]
        n_g = env.observation_space["desired_goal"].shape[0]
        obs = np.zeros((n, horizon + 1, n_o), np.float32)
        act = np.zeros((n, horizon, n_a), np.float32)
        ag = np.zeros((n, horizon + 1, n_g), np.float32)
        dg = np.zeros((n, n_g), np.float32)
        mus = np.zeros((n, env.dynamics_space.dim), np.float32)
        contact, success = np.full(n, -1, np.int64), np.zeros(n, bool)
        for i, seed in enumerate(seeds):
            rng = np.random.default_rng([base_seed, int(seed)])
            o, info = env.reset(seed=int(seed))
            policy.reset()
            mus[i] = info["mu"]
            obs[i, 0], ag[i, 0], dg[i] = o["observation"], o["achieved_goal"], o["desired_goal"]
            probe = (exploration.probe_steps
                     if rng.random() < exploration.probe_fraction else 0)
            offset = np.zeros(n_a)
            for t in range(horizon):
                a = policy.act(o["observation"], o["desired_goal"])
                if t < probe:
                    if t % exploration.probe_hold == 0:
                        offset = rng.uniform(-1.0, 1.0, n_a) * scale
                    a = offset
                a = np.clip(a + rng.normal(0, exploration.noise_std, n_a) * scale, -scale, scale)
                policy.observe(a)
                o, _, _, _, info = env.step(a.astype(np.float32))
                obs[i, t + 1], ag[i, t + 1] = o["observation"], o["achieved_goal"]
                act[i, t] = a
            contact[i] = info["contact_step"]
            success[i] = bool(info["is_success_0.05"])
        names = list(env._train_space.names)
    finally:
        env.close()
    meta = {"env_id": policy.env_id, "env_kwargs": dict(env_kwargs), "dynamics": dynamics,
            "sample_ranges": {k: list(v) for k, v in (sample_ranges or {}).items()},
            "exploration": exploration.__dict__, "seed": base_seed,
            "policy": policy.source, "mu_names": names}
    return RolloutDataset(obs, act, dg, ag, mus, np.asarray(seeds, np.int64), contact, success,
                          meta)


def _collect_worker(args: tuple) -> RolloutDataset:
    import torch

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _collect(*args)


def collect_rollouts(policy: ActorPolicy | RuntimePolicy, dynamics: str, episodes: int,
                     seed: int, noise_std: float = 0.1, *, exploration: Exploration | None = None,
                     env_kwargs: dict[str, Any] | None = None,
                     sample_ranges: dict[str, Sequence[float]] | None = None,
                     workers: int = 1) -> RolloutDataset:
    """Roll out a policy with exploration.

    Args:
        policy: an :class:`ActorPolicy` or a :class:`RuntimePolicy`.
        dynamics: ``train``, ``heldout`` or ``nominal`` (see
            :func:`~meta_train.common.evaluation.make_eval_env`).
        episodes: number of episodes; episode ``i`` resets with seed ``seed + i``.
        seed: first reset seed, also the seed of each episode's exploration generator.
        noise_std: Gaussian noise on each action (fraction of the bound); ignored when
            ``exploration`` is given.
        exploration: noise and probing (:class:`Exploration`).
        env_kwargs: overrides of the policy's env kwargs (e.g. ``episode_steps``).
        sample_ranges: sampling ranges of some parameters (e.g. one held-out band), ``mu``
            still normalised over the training ranges.
        workers: processes that collect in parallel (spawned; same result as one).
    """
    if episodes < 1 or workers < 1:
        raise ValueError(f"episodes and workers must be >= 1, got {episodes} and {workers}")
    exploration = exploration or Exploration(noise_std=noise_std)
    exploration.validate()
    kwargs = {**policy.env_kwargs, **(env_kwargs or {})}
    seeds = list(range(seed, seed + episodes))
    if workers == 1:
        return _collect(policy, dynamics, seeds, exploration, kwargs, sample_ranges, seed)
    chunks = [c.tolist() for c in np.array_split(seeds, min(workers, episodes)) if len(c)]
    jobs = [(policy, dynamics, c, exploration, kwargs, sample_ranges, seed) for c in chunks]
    with mp.get_context("spawn").Pool(len(jobs)) as pool:
        parts = pool.map(_collect_worker, jobs)
    return RolloutDataset.concatenate(parts)


def held_out_bands(space, parameters: Sequence[str]) -> dict[str, tuple[str, tuple[float, float]]]:
    """``{"<parameter> below|above": (parameter, (low, high))}`` for every member of each of
    ``parameters`` (``puck_friction``, or a group such as ``controller_gain_scale`` for all its
    joints), below and above its training range in ``space`` (a :class:`sim.dynamics`
    dynamics space); bands the physical floor empties are left out.

    Raises:
        ConfigError: a name that is no dynamics parameter.
    """
    from meta_train.common.config import ConfigError

    out = {}
    for key in parameters:
        members = [n for n in space.names if n == key or n.startswith(key + "/")]
        if not members:
            raise ConfigError(f"band_parameters: unknown dynamics parameter {key!r}")
        for name in members:
            for side in ("below", "above"):
                band = space.heldout_band(name, side)
                if band is not None:
                    out[f"{name} {side}"] = (name, band)
    return out


def source_digest(source: str | Path) -> str:
    """16 hex digits of the sha256 of a policy's source: a file (an ONNX model, a checkpoint)
    or a directory's files in name order."""
    path = Path(source)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    files = sorted(p for p in path.glob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:16]


def cached_rollouts(policy, name: str, episodes: int, seed: int, exploration: Exploration, *,
                    data_dir: str | Path, episode_steps: int, workers: int,
                    sample_ranges: dict | None = None) -> RolloutDataset:
    """:func:`collect_rollouts` of ``policy`` on training dynamics, or the same dataset reused
    from ``data_dir``: the file name's key hashes the provenance (the policy's digest, episodes,
    seed, exploration, episode length, sampling ranges), so every study that asks for the same
    data reuses it. ``policy`` is a batch policy with a ``source``, or the path of an exported
    policy (loaded only when the data must be collected)."""
    source = policy if isinstance(policy, (str, Path)) else policy.source
    spec = {"policy": source_digest(source), "episodes": episodes, "seed": seed,
            "exploration": exploration.__dict__, "episode_steps": episode_steps,
            "sample_ranges": sample_ranges or {}}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(data_dir) / f"{name}_{key}.npz"
    if path.is_file():
        return RolloutDataset.load(path)
    if isinstance(policy, (str, Path)):
        policy = RuntimePolicy(policy)
    data = collect_rollouts(policy, "train", episodes, seed, exploration=exploration,
                            env_kwargs={"episode_steps": episode_steps},
                            sample_ranges=sample_ranges, workers=workers)
    data.save(path)
    return data
