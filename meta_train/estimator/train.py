"""Train, calibrate, evaluate and export the dynamics estimator (online system identification).

As in UP-OSI (Yu et al. 2017) and RMA (Kumar et al. 2021), a recurrent network regresses the
normalised dynamics ``mu`` from the history of observations, their changes and the actions,
with a Gaussian likelihood so that its predicted variance is an uncertainty. A forward head on
the same memory predicts the next change of the observation (ReBAL's recurrent model,
Nagabandi et al. 2019); trained on the training dynamics only, its error on the transitions the
robot shows is evidence that they are not among them.

    meta-train estimator --preset pusher

1. datasets (kept in ``data_dir`` and reused while their provenance is the same): the policy's
   rollouts with exploration (Gaussian noise, and probes of random joint motion at the start of
   some episodes) for training; its own rollouts, on other seeds, for validation (the OOD rule
   is calibrated on them), for the test of the identification table, and in every held-out
   band (one parameter a third of its range beyond an edge, the others in range; never
   trained on);
2. training (Gaussian NLL of ``mu`` at every step plus the forward head's squared error);
3. the OOD rule's thresholds, so that at most ``ood_fpr`` of the validation episodes are
   flagged;
4. export (``.onnx`` + sidecar, io_version 2) and the report (``<out>_report.json`` and
   ``.md``): the identification table and the OOD table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from meta_train.common.contract import contract_fields, make_contract_env
from meta_train.common.device import resolve_device
from meta_train.common.files import atomic_write
from meta_train.common.networks import DynamicsEstimator, gaussian_nll
from meta_train.common.onnx_export import ModelMetadata, export_estimator
from meta_train.common.policies import load_actor_from_run
from meta_train.common.rollouts import (
    ActorPolicy,
    Exploration,
    RolloutDataset,
    RuntimePolicy,
    cached_rollouts,
)
from meta_train.common.rollouts import held_out_bands as rollout_bands
from meta_train.estimator.config import EstimatorConfig
from meta_train.estimator.report import at_steps, identification, markdown, ood_rows

STD_OFF = 3.0
"""``ood_std_threshold`` that leaves the uncertainty term out: above the largest standard
deviation the network can output (``exp(logvar_max / 2)``, e). On the held-out bands the
predicted std separated no band better than the forward model's error or the estimate's
range (docs/benchmarks.md), and it is high on hard in-range tasks."""


def load_policy(cfg: EstimatorConfig) -> ActorPolicy | RuntimePolicy:
    """The policy that drives the arm: an exported model or a run's actor."""
    path = Path(cfg.policy)
    if path.suffix == ".onnx":
        return RuntimePolicy(path)
    actor, run = load_actor_from_run(path, cfg.policy_which)
    return ActorPolicy(actor, run)


def dataset(cfg: EstimatorConfig, name: str, policy, episodes: int, seed: int,
            exploration: Exploration, sample_ranges: dict | None = None) -> RolloutDataset:
    """A rollout dataset, collected or reused from ``data_dir`` (keyed by its provenance)."""
    return cached_rollouts(policy, name, episodes, seed, exploration, data_dir=cfg.data_dir,
                           episode_steps=cfg.episode_steps, workers=cfg.workers,
                           sample_ranges=sample_ranges)


def held_out_bands(cfg: EstimatorConfig, env) -> dict[str, tuple[str, tuple[float, float]]]:
    """``{band name: (parameter, (low, high))}`` for every member of ``band_parameters``."""
    return rollout_bands(env._train_space, cfg.band_parameters)


def _make_estimator(cfg: EstimatorConfig, train: RolloutDataset, scale) -> DynamicsEstimator:
    obs_dim, act_dim = train.obs.shape[-1], train.action.shape[-1]
    est = DynamicsEstimator(obs_dim, act_dim, train.mu.shape[-1], hidden=cfg.hidden,
                            action_scale=scale, obs_deltas=True, forward_head=True,
                            tracking_joints=act_dim if cfg.tracking else 0)
    o, a = torch.as_tensor(train.obs), torch.as_tensor(train.action)
    est.obs_norm.update(o)
    est.delta_norm.update(o[:, 1:] - o[:, :-1])
    if cfg.tracking:
        est.tracking_norm.update(est.tracking_error(o[:, 1:], o[:, :-1], a))
    return est


def fit(cfg: EstimatorConfig, train: RolloutDataset, scale, device) -> DynamicsEstimator:
    """Train on whole episodes: Gaussian NLL of ``mu`` at every observation plus
    ``forward_weight`` times the forward head's squared error on every next change."""
    torch.manual_seed(cfg.seed)
    est = _make_estimator(cfg, train, scale).to(device)
    t = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
    obs, prev, act = t(train.obs), t(train.prev_action), t(train.action)
    target = t(train.mu)[:, None].expand(-1, obs.shape[1], -1)
    opt = torch.optim.Adam(est.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    rng = np.random.default_rng(cfg.seed)
    n = len(train)
    bar = tqdm(range(cfg.epochs), desc="estimator", unit="epoch", disable=not cfg.progress,
               file=sys.stderr, dynamic_ncols=True)
    for _ in bar:
        perm = rng.permutation(n)
        totals = np.zeros(2)
        for i in range(0, n, cfg.batch_episodes):
            idx = torch.as_tensor(perm[i:i + cfg.batch_episodes], device=device)
            mean, logvar, rec = est.forward_with_rec(obs[idx], prev[idx])
            nll = gaussian_nll(mean, logvar, target[idx])
            change = est.delta_norm(obs[idx, 1:] - obs[idx, :-1])
            fwd = (est.predict_delta(rec[:, :-1], act[idx]) - change).square().mean()
            opt.zero_grad(set_to_none=True)
            (nll + cfg.forward_weight * fwd).backward()
            opt.step()
            totals += (nll.item(), fwd.item())
        sched.step()
        totals /= max(1, -(-n // cfg.batch_episodes))
        bar.set_postfix(nll=f"{totals[0]:.3f}", fwd=f"{totals[1]:.3f}")
    return est.cpu().eval()


@torch.no_grad()
def outputs(est: DynamicsEstimator, data: RolloutDataset,
            batch: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per observation: ``mean``, ``std`` ``[N, T+1, m]`` and the forward head's mean squared
    error on the change that led to it, ``[N, T+1]`` (0 at an episode's first observation), as
    the exported graph computes them step by step."""
    means, stds, errs = [], [], []
    for i in range(0, len(data), batch):
        o = torch.as_tensor(data.obs[i:i + batch])
        p = torch.as_tensor(data.prev_action[i:i + batch])
        a = torch.as_tensor(data.action[i:i + batch])
        mean, logvar, rec = est.forward_with_rec(o, p)
        err = est.delta_norm(o[:, 1:] - o[:, :-1]) - est.predict_delta(rec[:, :-1], a)
        means.append(mean.numpy())
        stds.append(np.exp(0.5 * logvar.numpy()))
        e2 = (err**2).mean(-1).numpy()
        errs.append(np.concatenate([np.zeros((len(e2), 1), e2.dtype), e2], axis=1))
    return np.concatenate(means), np.concatenate(stds), np.concatenate(errs)


def window_mean(err: np.ndarray, window: int) -> np.ndarray:
    """``[N, T+1]``: at each observation, the mean of the errors of the last ``window``
    observations after the first (the runtime's window; 0 at the first)."""
    cs = np.cumsum(err, axis=1)
    shifted = np.concatenate([np.zeros((len(err), window)), cs[:, :-window]], axis=1)
    count = np.minimum(np.arange(err.shape[1]), window)
    return np.where(count > 0, (cs - shifted) / np.maximum(count, 1), 0.0)


def ood_score(mean: np.ndarray, std: np.ndarray, err: np.ndarray, rule: dict) -> np.ndarray:
    """``[N, T+1]``: the runtime's OOD score (``EstimatorRuntime``) at every observation."""
    score = np.maximum(((np.abs(mean) - 1.0) / rule["ood_mu_margin"]).max(-1),
                       (std / rule["ood_std_threshold"]).max(-1))
    if rule["ood_error_threshold"] > 0:
        score = np.maximum(score, window_mean(err, rule["ood_error_window"])
                           / rule["ood_error_threshold"])
    return score


def calibrate(mean: np.ndarray, err: np.ndarray, cfg: EstimatorConfig,
              window: int = 10) -> dict[str, Any]:
    """Thresholds of the OOD rule on in-range (validation) episodes: each of its two terms,
    the estimate's excess over the training range and the forward model's windowed error, may
    flag ``ood_fpr / 2`` of the episodes at some step from ``ood_warmup`` on."""
    w = cfg.ood_warmup
    q = 1.0 - cfg.ood_fpr / 2.0
    excess = (np.abs(mean[:, w:]) - 1.0).max(axis=(1, 2))
    margin = float(max(np.quantile(excess, q), 0.05))
    peak = window_mean(err, window)[:, w:].max(axis=1)
    threshold = float(np.quantile(peak, q)) * 1.0001 + 1e-9
    return {"ood_mu_margin": margin, "ood_std_threshold": STD_OFF,
            "ood_error_threshold": threshold, "ood_error_window": window}


def train_estimator(cfg: EstimatorConfig, command: str = "") -> dict[str, Any]:
    """Datasets, training, calibration, export and report; returns the report."""
    cfg.validate()
    t0 = time.perf_counter()
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device)
    policy = load_policy(cfg)
    env = make_contract_env(policy.env_id, {**policy.env_kwargs,
                                            "episode_steps": cfg.episode_steps})
    scale = env.action_space.high.tolist()
    bands = held_out_bands(cfg, env)
    own = Exploration(noise_std=0.0)
    base = 1_000_000 * (cfg.seed + 1)
    explore = Exploration(cfg.noise_std, cfg.probe_fraction, cfg.probe_steps)
    train = dataset(cfg, "train", policy, cfg.train_episodes, base, explore)
    val = dataset(cfg, "val", policy, cfg.val_episodes, base + 200_000, own)
    t_data = time.perf_counter() - t0
    keep = train.inliers()
    train = train.subset(np.flatnonzero(keep))
    est = fit(cfg, train, scale, device)
    t_train = time.perf_counter() - t0
    v_mean, v_std, v_err = outputs(est, val)
    rule = calibrate(v_mean, v_err, cfg)

    out = Path(cfg.out)
    flat = train.obs.reshape(-1, train.obs.shape[-1])
    meta = ModelMetadata(
        kind="estimator", obs_dim=flat.shape[-1], goal_dim=0, act_dim=train.action.shape[-1],
        action_low=(-np.asarray(scale)).tolist(), action_high=list(scale),
        obs_low=flat.min(0).tolist(), obs_high=flat.max(0).tolist(), goal_low=[],
        goal_high=[], training_config={"estimator": cfg.to_dict(),
                                       "policy": {"source": policy.source,
                                                  "env_kwargs": policy.env_kwargs}},
        **rule, **contract_fields(env),
        mu_units=[p.units for p in env._train_space.params],
    )
    env.close()
    export_estimator(est, out, meta)

    # the report: identification and OOD on test data the calibration never saw
    names = list(train.info["mu_names"])
    test = dataset(cfg, "test", policy, cfg.test_episodes, base + 400_000, own)
    m, s, e = outputs(est, test)
    test_score = ood_score(m, s, e, rule)
    ident = {"train": identification(m, test.mu, test.contact_step, names)}
    band_rows = {}
    for i, (band_name, (param, rng)) in enumerate(bands.items()):
        d = dataset(cfg, "band", policy, cfg.band_episodes, base + 600_000 + 1000 * i, own,
                    {param: rng})
        bm, bs, be = outputs(est, d)
        tab = identification(bm, d.mu, d.contact_step, names, contact_steps=(cfg.report_k,),
                             reset_steps=())
        tab["parameter"] = param
        ident[band_name] = tab
        band_rows[band_name] = {"score": ood_score(bm, bs, be, rule),
                                "contact_step": d.contact_step, "success": d.success,
                                "band": list(rng)}
    ood = ood_rows(test_score, test.contact_step, band_rows, cfg.report_k, cfg.ood_warmup)
    ep, t = at_steps(test.contact_step, cfg.report_k, test.horizon)
    report = {
        "command": command or "meta-train estimator",
        "model": str(out), "onnx_sha256": json.loads(out.with_suffix(".json").read_text())[
            "onnx_sha256"],
        "policy": policy.source,
        "datasets": {"train": len(keep), "train_inliers": int(keep.sum()), "val": len(val),
                     "test": len(test), "per_band": cfg.band_episodes,
                     "episode_steps": cfg.episode_steps},
        "wall_s": {"data": round(t_data, 1), "data_and_training": round(t_train, 1),
                   "total": round(time.perf_counter() - t0, 1)},
        "ood_rule": rule,
        "in_range_flagged_val": float((ood_score(v_mean, v_std, v_err, rule)
                                       [:, cfg.ood_warmup:] > 1).any(1).mean()),
        "identification": ident,
        "ood": ood,
        "headline": {"metric": f"rmse_ratio_at_contact_plus_{cfg.report_k}",
                     "episodes": int(len(ep)),
                     "mean_over_parameters": float(np.mean(
                         np.sqrt(((m[ep, t] - test.mu[ep]) ** 2).mean(0))
                         / np.sqrt((test.mu[ep] ** 2).mean(0)))) if len(ep) else None},
    }
    json_path = out.with_name(out.stem + "_report.json")
    atomic_write(json_path, (json.dumps(report, indent=1) + "\n").encode())
    atomic_write(out.with_name(out.stem + "_report.md"), (markdown(report) + "\n").encode())
    print(markdown(report))
    print(f"wrote {out}, {out.with_suffix('.json')}, {json_path} and "
          f"{out.with_name(out.stem + '_report.md')}", file=sys.stderr)
    return report
