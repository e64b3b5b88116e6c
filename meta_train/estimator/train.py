"""Train, evaluate and export the dynamics estimator (online system identification).

As in UP-OSI (Yu et al. 2017) and RMA (Kumar et al. 2021), a recurrent network regresses the
(normalised) dynamics mu from the history of observations and actions. It is trained in sim,
where mu is known, on rollouts of a trained policy over randomized dynamics, with a Gaussian
negative log-likelihood so that its predicted variance is an uncertainty. The report measures,
per parameter, the error after k history steps against the constant prior-mean estimator, on
training and held-out dynamics, which parameters are identifiable from pushing, the calibration
of the uncertainty, and an out-of-distribution rule calibrated on training dynamics.

    meta-train estimator --policy-run runs/<policy run> --out models/pusher_estimator.onnx
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from meta_train.common.contract import contract_fields, make_contract_env
from meta_train.common.device import resolve_device
from meta_train.common.networks import DynamicsEstimator, gaussian_nll
from meta_train.common.onnx_export import ModelMetadata, export_estimator
from meta_train.common.policies import load_actor_from_run
from meta_train.common.rollouts import collect_rollouts
from meta_train.estimator.config import EstimatorConfig

HISTORY_STEPS = (1, 5, 10, 20, 50, 100)
OOD_WARMUP_STEPS = 10



@torch.no_grad()
def predict(est: DynamicsEstimator, obs, prev) -> tuple[np.ndarray, np.ndarray]:
    mean, logvar, _ = est(torch.as_tensor(obs), torch.as_tensor(prev))
    return mean.numpy(), np.exp(0.5 * logvar.numpy())


def error_table(mean, mu, names, horizon) -> dict:
    """Per-parameter RMSE after k steps vs. the prior-mean (0) estimator."""
    out = {}
    prior = np.sqrt(np.mean(mu**2, axis=0))
    for k in HISTORY_STEPS:
        if k > horizon + 1:
            continue
        rmse = np.sqrt(np.mean((mean[:, k - 1] - mu) ** 2, axis=0))
        out[str(k)] = {n: {"rmse": float(r), "prior_rmse": float(p), "ratio": float(r / p)}
                       for n, r, p in zip(names, rmse, prior, strict=True)}
    return out


def ood_scores(mean, std, margin, std_thr) -> np.ndarray:
    """The runtime's rule: max over parameters of max((|m|-1)/margin, std/threshold)."""
    return np.maximum((np.abs(mean) - 1.0) / margin, std / std_thr).max(axis=-1)


def train_estimator(cfg: EstimatorConfig) -> dict:
    """Collect data, train, evaluate, calibrate the OOD rule, export; returns the report."""
    cfg.validate()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    actor, run = load_actor_from_run(cfg.policy_run, cfg.policy_which)
    train = collect_rollouts(actor, run, "train", cfg.train_episodes, cfg.seed * 7919 + 1,
                             cfg.noise_std)
    val = collect_rollouts(actor, run, "train", cfg.val_episodes, 900_000 + cfg.seed,
                           cfg.noise_std)
    held = collect_rollouts(actor, run, "heldout", cfg.heldout_episodes, 800_000 + cfg.seed,
                            cfg.noise_std)
    obs, prev, mu = train.obs, train.prev_action, train.mu
    v_obs, v_prev, v_mu = val.obs, val.prev_action, val.mu
    h_obs, h_prev, h_mu = held.obs, held.prev_action, held.mu
    env = make_contract_env(run.env_id, run.env_kwargs)
    names, horizon = train.info["mu_names"], train.horizon
    scale = env.action_space.high.tolist()
    est = DynamicsEstimator(obs.shape[-1], prev.shape[-1], mu.shape[-1], hidden=cfg.hidden,
                            action_scale=scale)
    est.obs_norm.update(torch.as_tensor(obs))
    est.to(device)
    opt = torch.optim.Adam(est.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    o_t, p_t = torch.as_tensor(obs, device=device), torch.as_tensor(prev, device=device)
    m_t = torch.as_tensor(mu, device=device)[:, None].expand(-1, horizon + 1, -1)
    n = len(obs)
    for _epoch in range(cfg.epochs):
        perm = rng.permutation(n)
        for i in range(0, n, cfg.batch_episodes):
            idx = torch.as_tensor(perm[i : i + cfg.batch_episodes], device=device)
            mean, logvar, _ = est(o_t[idx], p_t[idx])
            loss = gaussian_nll(mean, logvar, m_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    est.cpu().eval()
    v_mean, v_std = predict(est, v_obs, v_prev)
    h_mean, h_std = predict(est, h_obs, h_prev)
    # Identifiable: after the whole episode, error clearly below the prior's (ratio < 0.7).
    val_table = error_table(v_mean, v_mu, names, horizon)
    held_table = error_table(h_mean, h_mu, names, horizon)  # info['mu'] is normalised
    last = str(max(k for k in HISTORY_STEPS if k <= horizon + 1))
    identifiable = [nm for nm in names if val_table[last][nm]["ratio"] < 0.7]
    # Calibration: coverage of the +-2 sigma interval, training dynamics, after warm-up.
    z = np.abs(v_mean[:, OOD_WARMUP_STEPS:] - v_mu[:, None]) / v_std[:, OOD_WARMUP_STEPS:]
    coverage = {nm: float(np.mean(z[..., i] < 2.0)) for i, nm in enumerate(names)}
    # OOD rule calibrated for a false-positive rate of cfg.ood_fpr per step on training data.
    w = slice(OOD_WARMUP_STEPS, None)
    std_thr = float(np.quantile(v_std[:, w].max(-1), 1 - cfg.ood_fpr / 2)) + 1e-3
    excess = (np.abs(v_mean[:, w]) - 1.0).max(-1)
    margin = float(max(np.quantile(excess, 1 - cfg.ood_fpr / 2), 0.05))
    fpr = float(np.mean(ood_scores(v_mean[:, w], v_std[:, w], margin, std_thr) > 1))
    tpr = float(np.mean(ood_scores(h_mean[:, w], h_std[:, w], margin, std_thr) > 1))
    tpr_ep = float(np.mean(ood_scores(h_mean[:, -1], h_std[:, -1], margin, std_thr) > 1))

    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = ModelMetadata(
        kind="estimator", obs_dim=obs.shape[-1], goal_dim=0, act_dim=prev.shape[-1],
        action_low=(-np.asarray(scale)).tolist(), action_high=list(scale),
        obs_low=obs.reshape(-1, obs.shape[-1]).min(0).tolist(),
        obs_high=obs.reshape(-1, obs.shape[-1]).max(0).tolist(), goal_low=[], goal_high=[],
        training_config={"estimator": asdict(cfg), "policy": run.config},
        ood_mu_margin=margin, ood_std_threshold=std_thr, **contract_fields(env),
    )
    export_estimator(est, out, meta)
    report = {
        "command": "meta-train estimator " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in asdict(cfg).items() if v != ""),
        "episodes": {"train": cfg.train_episodes, "val": cfg.val_episodes,
                     "heldout": cfg.heldout_episodes, "horizon": horizon},
        "rmse_after_k_steps": {"train_dynamics": val_table, "heldout_dynamics": held_table},
        "identifiable": identifiable,
        "not_identifiable": [nm for nm in names if nm not in identifiable],
        "coverage_2sigma": coverage,
        "ood": {"rule": "max_i max((|mean_i|-1)/margin, std_i/std_threshold) > 1 after "
                        f"{OOD_WARMUP_STEPS} steps",
                "margin": margin, "std_threshold": std_thr, "fpr_train_per_step": fpr,
                "tpr_heldout_per_step": tpr, "tpr_heldout_episode_end": tpr_ep},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    report_path = Path(cfg.report) if cfg.report else out.with_name(out.stem + "_report.json")
    report_path.write_text(json.dumps(report, indent=1))
    print(summary_table(report))
    print(f"wrote {out}, {out.with_suffix('.json')} and {report_path}")
    env.close()
    return report


def summary_table(report: dict) -> str:
    """Markdown table: RMSE / prior RMSE per parameter after k steps."""
    tables = report["rmse_after_k_steps"]
    ks = list(tables["train_dynamics"])
    names = list(tables["train_dynamics"][ks[0]])
    head = "| parameter | " + " | ".join(f"train k={k}" for k in ks) + \
        f" | held-out k={ks[-1]} | identifiable |"
    lines = [head, "|" + "---|" * (len(ks) + 3)]
    for nm in names:
        cells = [f"{tables['train_dynamics'][k][nm]['ratio']:.2f}" for k in ks]
        held = tables["heldout_dynamics"][ks[-1]][nm]["ratio"]
        ident = "yes" if nm in report["identifiable"] else "no"
        lines.append(f"| {nm} | " + " | ".join(cells) + f" | {held:.2f} | {ident} |")
    return "\n".join(lines)
