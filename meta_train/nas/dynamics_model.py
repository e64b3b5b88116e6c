"""The dynamics model of the MAML study as a search objective: a
:class:`~meta_train.common.forward_model.ForwardModel` (the shared forward model: the next
observation from the observation and the action) trained on the shipped policy's rollouts.

Data are rollout datasets of the policy run through the robot's runtime, with exploration
(noise and probes), on the training dynamics; the validation episodes have their own seeds.
Both are kept in ``data_dir`` by provenance. Episodes that leave the robust range of the data
(a puck thrown off the table) are left out of both. Each epoch reports the validation error,
so pruners apply. The metric is the validation mean squared error of the normalised change of
the observation, before any adaptation: it scores the architecture and learning rate the
adaptation methods start from, not the adaptation itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meta_train.common.config import ConfigError, build_config
from meta_train.common.config import option as _f
from meta_train.common.device import resolve_device
from meta_train.common.forward_model import ForwardModel
from meta_train.common.objectives import Reporter
from meta_train.common.rollouts import Exploration, RolloutDataset, cached_rollouts


@dataclass
class DynamicsModelConfig:
    """A forward model of the pusher trained on a policy's rollouts."""

    policy: str = _f("models/pusher_policy.onnx", "exported policy whose rollouts are the data")
    episode_steps: int = _f(100, "control steps per episode")
    train_episodes: int = _f(600, "training rollouts")
    val_episodes: int = _f(150, "validation rollouts (other seeds)")
    noise_std: float = _f(0.1, "Gaussian noise on the policy's actions (fraction of the bound)")
    probe_fraction: float = _f(0.3, "share of episodes that start with random joint motions")
    probe_steps: int = _f(10, "steps of a probe")
    data_seed: int = _f(0, "seed of the datasets' resets and exploration")
    data_dir: str = _f("runs/dynamics_model_data", "where datasets are kept and reused")
    workers: int = _f(2, "processes collecting rollouts")
    hidden: int = _f(128, "width of the hidden layers")
    layers: int = _f(2, "hidden layers")
    lr: float = _f(1e-3, "Adam learning rate")
    weight_decay: float = _f(0.0, "Adam weight decay")
    batch_size: int = _f(256, "transitions per gradient step")
    epochs: int = _f(20, "passes over the training transitions")
    seed: int = _f(0, "seed of the network and the batches")
    device: str = _f("cpu", "torch device")
    torch_threads: int = _f(1, "CPU threads for torch (0 = torch default)")

    def validate(self) -> None:
        for name in ("episode_steps", "train_episodes", "val_episodes", "workers", "hidden",
                     "layers", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("lr must be > 0 and weight_decay >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check(values: Mapping[str, Any]) -> DynamicsModelConfig:
    return build_config(DynamicsModelConfig, dict(values))


def _dataset(cfg: DynamicsModelConfig, name: str, episodes: int, seed: int) -> RolloutDataset:
    path = Path(cfg.policy)
    if not path.is_file():
        raise FileNotFoundError(f"policy {path} not found")
    explore = Exploration(cfg.noise_std, cfg.probe_fraction, cfg.probe_steps)
    return cached_rollouts(path, name, episodes, seed, explore, data_dir=cfg.data_dir,
                           episode_steps=cfg.episode_steps, workers=cfg.workers)


def datasets(cfg: DynamicsModelConfig) -> tuple[RolloutDataset, RolloutDataset]:
    """``(train, val)``, collected or reused."""
    base = 1_000_000 * (cfg.data_seed + 1)
    return (_dataset(cfg, "train", cfg.train_episodes, base),
            _dataset(cfg, "val", cfg.val_episodes, base + 500_000))


def _transitions(data: RolloutDataset) -> tuple[torch.Tensor, ...]:
    data = data.subset(np.flatnonzero(data.inliers()))
    s, a, s2 = data.transitions()
    flat = [torch.as_tensor(x.reshape(-1, x.shape[-1]), dtype=torch.float32) for x in (s, a, s2)]
    return tuple(flat)


def prepare(values: dict[str, Any]) -> None:
    datasets(check(values))


def train(cfg: DynamicsModelConfig, report: Reporter | None = None) -> tuple[ForwardModel, float]:
    """Train the model; returns it and its final validation error (reported every epoch)."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device)
    train_set, val_set = datasets(cfg)
    s, a, s2 = _transitions(train_set)
    vs, va, vs2 = (x.to(device) for x in _transitions(val_set))
    torch.manual_seed(cfg.seed)
    scale = np.abs(train_set.action).max(axis=(0, 1)).clip(1e-6).tolist()
    model = ForwardModel(s.shape[-1], a.shape[-1], cfg.hidden, cfg.layers,
                         action_scale=scale)
    model.update_normalizers(s, s2)
    model.to(device)
    s, a, s2 = s.to(device), a.to(device), s2.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    val = float("nan")
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(s), generator=gen).to(device)
        model.train()
        for i in range(0, len(s), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = model.loss(s[idx], a[idx], s2[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(model.loss(vs, va, vs2))
        if report is not None:
            report(epoch, val)
    return model.cpu(), val


def evaluate(values: dict[str, Any], report: Reporter, workdir: Path) -> float:
    """Validation error of a model trained with ``values``."""
    return train(check(values), report)[1]
