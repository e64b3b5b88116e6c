"""The dynamics estimator as a search objective (``meta_train.common.objectives``).

A trial trains the estimator exactly as ``meta-train estimator`` does (same datasets, same
``fit``), on whatever budget its values say, and scores it on the validation rollouts: the
report's headline, the RMSE of the estimate ``report_k`` steps after the first contact as a
ratio of the best constant's, averaged over the parameters, but on validation episodes, never
on the test episodes of the identification table. No export, calibration or held-out bands.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meta_train.common.config import build_config
from meta_train.common.contract import make_contract_env
from meta_train.common.device import resolve_device
from meta_train.common.objectives import Reporter, TrainableObjective, register
from meta_train.common.rollouts import Exploration
from meta_train.estimator.config import EstimatorConfig, preset_values
from meta_train.estimator.report import at_steps
from meta_train.estimator.train import dataset, fit, load_policy, outputs


def check(values: dict[str, Any]) -> EstimatorConfig:
    return build_config(EstimatorConfig, dict(values))


def _data(cfg: EstimatorConfig):
    """``(policy, train, val)`` as :func:`~meta_train.estimator.train.train_estimator` makes
    them (the same seeds and exploration, so the same cached files)."""
    policy = load_policy(cfg)
    base = 1_000_000 * (cfg.seed + 1)
    explore = Exploration(cfg.noise_std, cfg.probe_fraction, cfg.probe_steps)
    train = dataset(cfg, "train", policy, cfg.train_episodes, base, explore)
    val = dataset(cfg, "val", policy, cfg.val_episodes, base + 200_000,
                  Exploration(noise_std=0.0))
    return policy, train, val


def validation_error(cfg: EstimatorConfig, est, val) -> float:
    """Mean over parameters of the RMSE ratio at contact + ``report_k`` on ``val``."""
    mean, _, _ = outputs(est, val)
    ep, t = at_steps(val.contact_step, cfg.report_k, val.horizon)
    if not len(ep):
        raise ValueError("no validation episode reaches contact + report_k")
    err = np.sqrt(((mean[ep, t] - val.mu[ep]) ** 2).mean(0))
    return float(np.mean(err / np.maximum(np.sqrt((val.mu[ep] ** 2).mean(0)), 1e-12)))


def evaluate(values: dict[str, Any], report: Reporter, workdir: Path) -> float:
    cfg = check(values)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    policy, train, val = _data(cfg)
    env = make_contract_env(policy.env_id, {**policy.env_kwargs,
                                            "episode_steps": cfg.episode_steps})
    scale = env.action_space.high.tolist()
    env.close()
    train = train.subset(np.flatnonzero(train.inliers()))
    est = fit(cfg, train, scale, resolve_device(cfg.device))
    return validation_error(cfg, est, val)


def prepare(values: dict[str, Any]) -> None:
    _data(check(values))


ESTIMATOR = register(TrainableObjective(
    name="estimator",
    description="the dynamics estimator (meta-train estimator) on the shipped policy's "
                "rollouts",
    direction="minimize",
    metric="validation RMSE ratio of the estimate at contact + report_k (mean over "
           "parameters)",
    fields=tuple(f.name for f in dataclasses.fields(EstimatorConfig)),
    base_values=lambda preset: preset_values(preset) if preset else {},
    check=check,
    evaluate=evaluate,
    prepare=prepare,
    trainer_command="meta-train estimator --preset {preset}",
    outputs=lambda folder: {"out": str(Path(folder) / "pusher_estimator.onnx")},
))
