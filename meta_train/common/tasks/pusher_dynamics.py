"""Adapting a dynamics model of the pusher arm online, as GrBAL and ReBAL do (Nagabandi,
Clavera et al., ICLR 2019).

A task is one draw of the dynamics of ``MetaPusherPush-v0`` on a 100-step episode. A model
predicts the next observation (joint positions and velocities, puck position) from the
observation and the action (:class:`~meta_train.common.forward_model.ForwardModel`); it adapts
on the ``M`` most recent transitions of the episode and is scored on the next ``K = 10``.

Data are rollout datasets of the shipped policy (:mod:`meta_train.common.rollouts`), kept in
``data_dir`` under a name keyed by their provenance exactly as the estimator keys its own, so
the two studies share them: training rollouts with exploration (noise and probes) over the
training ranges; validation and test rollouts of the policy's own actions in range; and one
set per held-out band (one parameter a third of its range beyond an edge, the others in
range; :meth:`sim.dynamics.DynamicsSpace.heldout_band`), never trained on.

The evaluation adapts, in every test episode, at the anchors ``t`` of ``anchors`` (so that
every ``M`` scores the same predictions: transitions ``t-M .. t-1`` adapt, ``t .. t+K-1`` are
scored) and reports per episode, for every ``M``, the mean squared error of the predicted
change of the observation in units of its training standard deviation, over all terms, the
arm's (joint positions and velocities) and the puck's. After the first contact it adapts
again at ``contact_step + contact_offset`` (on the ``M`` most recent transitions, or all of the
episode's where it has fewer) and records the squared error of the predicted puck
displacement (m^2, over the next ``K`` steps), which a comparison reports as a ratio to no
adaptation. A window whose observations leave the training data's robust range (the puck
thrown off the table, ...) is not scored, for any method (:meth:`PusherDynamicsTask.in_range`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from meta_train.common import rollouts
from meta_train.common.config import ConfigError
from meta_train.common.config import option as _f
from meta_train.common.rollouts import held_out_bands
from meta_train.common.tasks.base import Adapter, MetaTask, TaskBatch, summarize, time_adaptation

BAND_PARAMETERS = ["puck_friction", "puck_damping", "puck_mass", "controller_gain_scale",
                   "table_height", "action_timestep_rate"]
"""The held-out bands the estimator study defines (groups expand to their members)."""

ARM, PUCK = slice(0, 6), slice(6, 9)


class _nan_ok:
    """Silence numpy's warning about means of all-NaN rows (those episodes are NaN)."""

    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc) -> None:
        self._w.__exit__(*exc)


@dataclass
class PusherDynamicsConfig:
    """Online adaptation of a dynamics model of the pusher (GrBAL / ReBAL's setting)."""

    policy: str = _f("models/pusher_policy.onnx", "the exported policy whose interaction "
                     "makes the data (run through the robot's runtime)")
    data_dir: str = _f("runs/estimator_data", "where rollout datasets are kept and reused "
                       "(keyed by provenance as the estimator keys them: the two share data)")
    episode_steps: int = _f(100, "control steps per episode")
    train_episodes: int = _f(2000, "training rollouts (training ranges, with exploration)")
    val_episodes: int = _f(300, "validation rollouts (the policy's own, training ranges)")
    test_episodes: int = _f(400, "test rollouts (the policy's own, training ranges)")
    band_episodes: int = _f(100, "test rollouts per held-out band")
    band_parameters: list = _f(list(BAND_PARAMETERS), "parameters (or groups) whose held-out "
                               "bands are evaluated, one band beyond each edge of the "
                               "training range, a third of its width")
    noise_std: float = _f(0.1, "training data: Gaussian noise on the policy's actions "
                          "(fraction of the bound)")
    probe_fraction: float = _f(0.3, "training data: share of episodes that start with a probe")
    probe_steps: int = _f(10, "training data: steps of a probe")
    data_seed: int = _f(0, "datasets' reset seeds start at 1,000,000 x (data_seed + 1)")
    workers: int = _f(2, "processes collecting rollouts (when a dataset must be made)")
    hidden: int = _f(64, "model: width of each hidden layer")
    layers: int = _f(2, "model: hidden layers")
    adapt_sizes: list = _f([5, 10, 20, 40], "M: transitions adapted on (meta-training draws "
                           "one per meta-batch; the evaluation reports each)")
    query_steps: int = _f(10, "K: the next transitions scored")
    anchors: list = _f([40, 65, 90], "steps t of each test episode at which the model adapts "
                       "on t-M .. t-1 and predicts t .. t+K-1 (t >= max M, t + K <= T)")
    contact_offset: int = _f(5, "the contact table adapts at contact_step + this")
    huber_delta: float = _f(1.0, "training and adaptation loss: Huber's, quadratic within this "
                            "many training stds of the change and linear beyond (0: squared "
                            "error); the evaluation reports squared errors either way")
    timing_repeats: int = _f(20, "repeats of the one-adaptation timing (median reported)")

    def validate(self) -> None:
        for name in ("episode_steps", "train_episodes", "val_episodes", "test_episodes",
                     "band_episodes", "workers", "hidden", "layers", "query_steps",
                     "timing_repeats"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.adapt_sizes or min(self.adapt_sizes) < 1:
            raise ConfigError("adapt_sizes must list M >= 1")
        if not self.anchors or min(self.anchors) < max(self.adapt_sizes) or \
                max(self.anchors) + self.query_steps > self.episode_steps:
            raise ConfigError(f"anchors must lie in [max(adapt_sizes), episode_steps - "
                              f"query_steps] = [{max(self.adapt_sizes)}, "
                              f"{self.episode_steps - self.query_steps}]")
        if self.contact_offset < 0 or self.huber_delta < 0:
            raise ConfigError("contact_offset and huber_delta must be >= 0")


def cached_rollouts(cfg: PusherDynamicsConfig, name: str, episodes: int, seed: int,
                    exploration, sample_ranges: dict | None = None):
    """A rollout dataset of ``cfg.policy``, collected or reused from ``data_dir`` (the
    estimator's cache: either study reuses the other's datasets)."""
    return rollouts.cached_rollouts(cfg.policy, name, episodes, seed, exploration,
                                    data_dir=cfg.data_dir, episode_steps=cfg.episode_steps,
                                    workers=cfg.workers, sample_ranges=sample_ranges)


@dataclass
class Episodes:
    """Transitions of ``N`` episodes as tensors: ``obs``, ``next_obs`` ``[N, T, 9]``,
    ``action`` ``[N, T, 3]``, ``mu`` ``[N, 15]``, ``contact_step`` ``[N]`` (numpy)."""

    obs: torch.Tensor
    action: torch.Tensor
    next_obs: torch.Tensor
    mu: torch.Tensor
    contact_step: np.ndarray

    @classmethod
    def from_dataset(cls, data, device) -> Episodes:
        s, a, s2 = data.transitions()
        t = lambda x: torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32,  # noqa: E731
                                      device=device)
        return cls(t(s), t(a), t(s2), t(data.mu), np.asarray(data.contact_step))

    def __len__(self) -> int:
        return self.obs.shape[0]

    def windows(self, episodes: np.ndarray, anchors: np.ndarray, m: int, k: int) -> TaskBatch:
        """Support ``anchor-m .. anchor-1``, query ``anchor .. anchor+k-1`` of each episode."""
        ep = torch.as_tensor(episodes, device=self.obs.device)[:, None]
        base = torch.as_tensor(anchors, device=self.obs.device)[:, None]
        sup = base - m + torch.arange(m, device=self.obs.device)[None]
        qry = base + torch.arange(k, device=self.obs.device)[None]
        return TaskBatch((self.obs[ep, sup], self.action[ep, sup]), self.next_obs[ep, sup],
                         (self.obs[ep, qry], self.action[ep, qry]), self.next_obs[ep, qry],
                         self.mu[ep[:, 0]])


class PusherDynamicsTask(MetaTask):
    """Online adaptation of the pusher's dynamics model (see the module docstring)."""

    name = "pusher-dynamics"
    config_cls = PusherDynamicsConfig
    help = ("adapt a dynamics model of the pusher arm to the last M transitions and predict "
            "the next K (GrBAL / ReBAL), on training and held-out dynamics")
    shape_keys = ("hidden", "layers")

    def __init__(self, cfg: PusherDynamicsConfig, device: torch.device | str = "cpu") -> None:
        super().__init__(cfg, device)
        self._data: dict[str, Any] = {}

    # --- data -------------------------------------------------------------------------------
    def _base_seed(self) -> int:
        return 1_000_000 * (self.cfg.data_seed + 1)

    def _env_facts(self) -> tuple[list[float], dict]:
        """The action bound and the held-out bands, from the policy's env."""
        if "facts" not in self._data:
            from meta_train.common.contract import make_contract_env
            from meta_train.common.rollouts import RuntimePolicy

            policy = RuntimePolicy(self.cfg.policy)
            env = make_contract_env(policy.env_id, {**policy.env_kwargs,
                                                    "episode_steps": self.cfg.episode_steps})
            try:
                facts = (env.action_space.high.tolist(),
                         held_out_bands(env._train_space, self.cfg.band_parameters))
            finally:
                env.close()
            self._data["facts"] = facts
        return self._data["facts"]

    def dataset(self, split: str):
        """The rollout dataset of ``train`` (inliers only), ``val``, ``test`` or a band name."""
        if split in self._data:
            return self._data[split]
        from meta_train.common.rollouts import Exploration

        c, base = self.cfg, self._base_seed()
        own = Exploration(noise_std=0.0)
        if split == "train":
            explore = Exploration(c.noise_std, c.probe_fraction, c.probe_steps)
            data = cached_rollouts(c, "train", c.train_episodes, base, explore)
            data = data.subset(np.flatnonzero(data.inliers()))
        elif split == "val":
            data = cached_rollouts(c, "val", c.val_episodes, base + 200_000, own)
        elif split == "test":
            data = cached_rollouts(c, "test", c.test_episodes, base + 400_000, own)
        else:
            bands = self._env_facts()[1]
            if split not in bands:
                raise ValueError(f"unknown split {split!r}")
            i = list(bands).index(split)
            param, rng = bands[split]
            data = cached_rollouts(c, "band", c.band_episodes, base + 600_000 + 1000 * i, own,
                                   {param: rng})
        self._data[split] = data
        return data

    def episodes(self, split: str) -> Episodes:
        key = ("episodes", split)
        if key not in self._data:
            self._data[key] = Episodes.from_dataset(self.dataset(split), self.device)
        return self._data[key]

    def bands(self) -> list[str]:
        """Names of the held-out bands, in order."""
        return list(self._env_facts()[1])

    @property
    def delta_std(self) -> torch.Tensor:
        """``[9]`` standard deviation of the change of each observation term in training."""
        if "delta_std" not in self._data:
            e = self.episodes("train")
            d = (e.next_obs - e.obs).reshape(-1, e.obs.shape[-1])
            self._data["delta_std"] = d.std(0).clamp_min(1e-6)
        return self._data["delta_std"]

    # --- the learner ------------------------------------------------------------------------
    def build_model(self, context_dim: int = 0) -> nn.Module:
        """A :class:`ForwardModel` with its normalisers fitted to the training transitions."""
        from meta_train.common.forward_model import ForwardModel

        e = self.episodes("train")
        model = ForwardModel(e.obs.shape[-1], e.action.shape[-1], self.cfg.hidden,
                             self.cfg.layers, context_dim=context_dim,
                             action_scale=self._env_facts()[0]).to(self.device)
        model.update_normalizers(e.obs.reshape(-1, e.obs.shape[-1]),
                                 e.next_obs.reshape(-1, e.obs.shape[-1]))
        return model

    @property
    def context_dim(self) -> int:
        return int(self.episodes("train").mu.shape[-1])

    def sample(self, rng: np.random.Generator, tasks: int, split: str = "train") -> TaskBatch:
        """Windows of random episodes: one ``M`` (from ``adapt_sizes``) for the batch, anchors
        uniform over the episode."""
        e = self.episodes("train" if split == "train" else "val")
        m = int(rng.choice(self.cfg.adapt_sizes))
        k = self.cfg.query_steps
        horizon = e.obs.shape[1]
        eps = rng.integers(0, len(e), tasks)
        anchors = rng.integers(m, horizon - k + 1, tasks)
        return e.windows(eps, anchors, m, k)

    def errors(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[B, n, 9]`` squared errors in units of the training change's std."""
        return ((pred - y) / self.delta_std).square()

    def loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each task's mean Huber loss of the normalised error (``huber_delta``; 0: mean
        squared error). The puck's changes are heavy-tailed (a tap can bat it across the
        table), and a squared loss lets one such transition of a support set throw a gradient
        step, or a meta-gradient, far off; Huber's gradient is bounded per term."""
        d = self.cfg.huber_delta
        if d <= 0:
            return self.errors(pred, y).mean(dim=(1, 2))
        z = (pred - y) / self.delta_std
        return F.huber_loss(z, torch.zeros_like(z), reduction="none", delta=d).mean(dim=(1, 2))

    def metrics(self, pred: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        e = self.errors(pred, y)
        return {"loss": self.loss(pred, y), "mse": e.mean(dim=(1, 2)),
                "arm": e[..., ARM].mean(dim=(1, 2)), "puck": e[..., PUCK].mean(dim=(1, 2))}

    # --- evaluation -------------------------------------------------------------------------
    def _run(self, adapter: Adapter, windows: TaskBatch, step: int,
             batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The adapted query predictions' squared errors in std units ``[n, K, 9]`` and their
        raw errors ``pred - y`` (rad, rad/s, m) ``[n, K, 9]``."""
        sq, raw = [], []
        for i in range(0, windows.tasks, batch):
            b = windows.slice(slice(i, i + batch))
            pred = adapter(b, [step])[step].detach()
            sq.append(self.errors(pred, b.query_y))
            raw.append(pred - b.query_y)
        return torch.cat(sq), torch.cat(raw)

    def in_range(self, split: str) -> np.ndarray:
        """``[N, T+1]``: observations within the training data's robust range (each term
        within its 0.1% and 99.9% quantiles widened by half their distance on each side, the
        rule that keeps training episodes, :meth:`RolloutDataset.inliers`). A window that
        leaves it (the puck thrown off the table, ...) is not scored: no dynamics model of the
        table explains it."""
        if "bounds" not in self._data:
            c = self.cfg
            from meta_train.common.rollouts import Exploration

            raw = cached_rollouts(c, "train", c.train_episodes, self._base_seed(),
                                  Exploration(c.noise_std, c.probe_fraction, c.probe_steps))
            flat = raw.obs.reshape(-1, raw.obs.shape[-1])
            lo, hi = np.quantile(flat, [0.001, 0.999], axis=0)
            self._data["bounds"] = (lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo))
        lo, hi = self._data["bounds"]
        obs = self.dataset(split).obs
        return ((obs >= lo) & (obs <= hi)).all(-1)

    def _scored(self, adapter: Adapter, e: Episodes, ok: np.ndarray, eps: np.ndarray,
                anchors: np.ndarray, m: int, step: int, batch: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Errors of the windows ``(eps, anchors)`` adapting on up to ``m`` transitions (fewer
        where the episode has fewer before the anchor): ``[n, K, 9]`` std units and raw, NaN
        for windows that leave the training range."""
        k = self.cfg.query_steps
        n = len(eps)
        sq = np.full((n, k, e.obs.shape[-1]), math.nan)
        raw = np.full_like(sq, math.nan)
        size = np.minimum(anchors, m)
        for s in np.unique(size):
            idx = np.flatnonzero(size == s)
            valid = np.array([ok[i, a - s:a + k + 1].all() for i, a in
                              zip(eps[idx], anchors[idx], strict=True)], bool)
            idx = idx[valid]
            if len(idx) == 0:
                continue
            q, r = self._run(adapter, e.windows(eps[idx], anchors[idx], int(s), k), step,
                             batch)
            sq[idx], raw[idx] = q.cpu().numpy(), r.cpu().numpy()
        return sq, raw

    def _split_metrics(self, adapter: Adapter, split: str, step: int, batch: int,
                       prefix: str, out: dict[str, np.ndarray]) -> None:
        c, e, ok = self.cfg, self.episodes(split), self.in_range(split)
        n, horizon, k = len(e), e.obs.shape[1], c.query_steps
        anchors = np.asarray(c.anchors)
        eps = np.repeat(np.arange(n), len(anchors))
        ats = np.tile(anchors, n)
        at = e.contact_step + c.contact_offset
        touched = np.flatnonzero((e.contact_step > 0) & (at >= 1) & (at + k <= horizon))
        with np.errstate(all="ignore"), _nan_ok():
            for m in c.adapt_sizes:
                sq, _ = self._scored(adapter, e, ok, eps, ats, m, step, batch)
                per = sq.reshape(n, len(anchors), k, -1)
                out[f"{prefix}/M{m}/all"] = np.nanmean(per, axis=(1, 2, 3))
                out[f"{prefix}/M{m}/arm"] = np.nanmean(per[..., ARM], axis=(1, 2, 3))
                out[f"{prefix}/M{m}/puck"] = np.nanmean(per[..., PUCK], axis=(1, 2, 3))
                # after the first contact: the puck's displacement over the next K steps (m^2)
                col = np.full(n, math.nan)
                if len(touched):
                    _, raw = self._scored(adapter, e, ok, touched, at[touched], m, step, batch)
                    col[touched] = np.square(raw[..., PUCK]).sum(-1).mean(-1)
                out[f"{prefix}/contact/M{m}/puck_m2"] = col

    def evaluate(self, adapter: Adapter, final_step: int, batch: int = 100
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Per test episode, on training (``train``) and held-out (``heldout``, every band's
        episodes in order; ``heldout/band`` gives each one's band) dynamics:
        ``<split>/M<m>/{all,arm,puck}`` and ``<split>/contact/M<m>/puck_m2`` (NaN where the
        episode has no contact window); ``adapt_ms/M<m>``: one adaptation on one thread."""
        out: dict[str, np.ndarray] = {}
        self._split_metrics(adapter, "test", final_step, batch, "train", out)
        bands = self.bands()
        parts = {}
        for name in bands:
            parts[name] = {}
            self._split_metrics(adapter, name, final_step, batch, "heldout", parts[name])
        for key in parts[bands[0]]:
            out[key] = np.concatenate([parts[b][key] for b in bands])
        out["heldout/band"] = np.concatenate(
            [np.full(len(self.episodes(b)), i) for i, b in enumerate(bands)]).astype(float)
        timing = {}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            e = self.episodes("test")
            for m in self.cfg.adapt_sizes:
                w = e.windows(np.array([0]), np.array([max(self.cfg.anchors)]), m,
                              self.cfg.query_steps)
                timing[f"adapt_ms/M{m}"] = time_adaptation(adapter, w, final_step,
                                                           self.cfg.timing_repeats)
        finally:
            torch.set_num_threads(threads)
        summary = summarize({k: v for k, v in out.items() if k != "heldout/band"})
        return {"metric": "mse of the normalised change (std units); puck_m2: squared "
                          "displacement error (m^2)",
                "episodes": {"train": len(self.episodes("test")),
                             "heldout": int(len(out["heldout/band"]))},
                "bands": bands, "summary": summary, "timing": timing,
                "step": final_step}, out

    def eval_spec(self) -> dict[str, Any]:
        c = self.cfg
        return {"policy": rollouts.source_digest(c.policy), "episode_steps": c.episode_steps,
                "test_episodes": c.test_episodes, "band_episodes": c.band_episodes,
                "band_parameters": c.band_parameters, "data_seed": c.data_seed,
                "adapt_sizes": c.adapt_sizes, "query_steps": c.query_steps,
                "anchors": c.anchors, "contact_offset": c.contact_offset,
                "in_range": "train 0.1%/99.9% quantiles widened by 0.5"}
