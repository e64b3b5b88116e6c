"""The estimator's two tables, from its per-step outputs on rollout datasets (numpy only).

Identification: per parameter, the RMSE of the estimate in the parameter's sampling space,
normalised over the training range (``mu`` in ``[-1, 1]``), as a ratio of the RMSE of the best
constant estimate, the training distribution's median (0), after ``k`` steps since the first
contact with the puck (the estimate after observation ``contact_step + k``) and since reset;
95% intervals by bootstrap over episodes. Episodes without contact, or too short for ``k``,
are counted and left out.

Out of distribution: per held-out band, the AUROC of the OOD score of in-range episodes
against the band's at contact + ``k`` steps, the share of episodes flagged (score above 1 at
any step from the warm-up to the end), and the share of the band's failing episodes flagged
before their end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CONTACT_STEPS = (0, 5, 20, 50)
RESET_STEPS = (1, 10, 25, 50, 100)


def at_steps(contact_step: np.ndarray, k: int, horizon: int,
             since: str = "contact") -> tuple[np.ndarray, np.ndarray]:
    """``(episode index, observation index)`` of the estimate ``k`` steps after the first
    contact (``since="contact"``; episodes without one are left out) or after reset
    (observation ``k``), where the episode is long enough."""
    n = len(contact_step)
    if since == "reset":
        return (np.arange(n), np.full(n, k)) if k <= horizon else (np.arange(0), np.arange(0))
    t = contact_step + k
    ok = (contact_step >= 0) & (t <= horizon)
    return np.flatnonzero(ok), t[ok]


def _ratio(err: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.sqrt((err**2).mean(0)) / np.maximum(np.sqrt((truth**2).mean(0)), 1e-12)


def identification(mean: np.ndarray, mu: np.ndarray, contact_step: np.ndarray,
                   names: Sequence[str], *, contact_steps: Sequence[int] = CONTACT_STEPS,
                   reset_steps: Sequence[int] = RESET_STEPS, n_boot: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """The identification table of estimates ``mean [N, T+1, m]`` against the truth
    ``mu [N, m]`` (both normalised)."""
    horizon = mean.shape[1] - 1
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"episodes": int(len(mu)),
                           "without_contact": int((contact_step < 0).sum()), "rows": []}
    for since, ks in (("contact", contact_steps), ("reset", reset_steps)):
        for k in ks:
            ep, t = at_steps(contact_step, k, horizon, since)
            if not len(ep):
                continue
            err, truth = mean[ep, t] - mu[ep], mu[ep]
            ratio = _ratio(err, truth)
            boots = np.stack([_ratio(err[i], truth[i]) for i in
                              (rng.integers(0, len(ep), len(ep)) for _ in range(n_boot))])
            lo, hi = np.quantile(boots, [0.025, 0.975], axis=0)
            out["rows"].append({
                "since": since, "k": int(k), "n": int(len(ep)),
                "ratio": {nm: float(r) for nm, r in zip(names, ratio, strict=True)},
                "ci95": {nm: [float(a), float(b)] for nm, a, b in zip(names, lo, hi,
                                                                      strict=True)},
                "rmse": {nm: float(r) for nm, r in
                         zip(names, np.sqrt((err**2).mean(0)), strict=True)},
            })
    return out


def auroc(negative: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of scores, positives against negatives (ties count half):
    the probability that a random positive scores above a random negative."""
    neg, pos = np.asarray(negative, float), np.asarray(positive, float)
    if not len(neg) or not len(pos):
        return float("nan")
    allv = np.concatenate([neg, pos])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    u = ranks[len(neg):].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(neg) * len(pos)))


def flagged_before_end(score: np.ndarray, warmup: int) -> np.ndarray:
    """``[N]`` bool: the OOD score ``[N, T+1]`` exceeded 1 at some observation from
    ``warmup`` on."""
    return (score[:, warmup:] > 1.0).any(axis=1)


def ood_rows(in_score: np.ndarray, in_contact: np.ndarray, bands: dict[str, dict[str, Any]],
             k: int, warmup: int) -> dict[str, Any]:
    """The OOD table: ``in_score [N, T+1]`` of in-range episodes; ``bands[name]`` holds a
    band's ``score``, ``contact_step`` and ``success``."""
    horizon = in_score.shape[1] - 1
    ep, t = at_steps(in_contact, k, horizon)
    neg = in_score[ep, t]
    in_flag = flagged_before_end(in_score, warmup)
    rows = {}
    for name, b in bands.items():
        bep, bt = at_steps(b["contact_step"], k, horizon)
        flag = flagged_before_end(b["score"], warmup)
        fail = ~b["success"].astype(bool)
        rows[name] = {
            "band": b.get("band"), "episodes": int(len(b["score"])),
            "auroc": auroc(neg, b["score"][bep, bt]),
            "flagged": float(flag.mean()),
            "failing": int(fail.sum()),
            "failing_flagged": float(flag[fail].mean()) if fail.any() else None,
        }
    return {"k": int(k), "warmup": int(warmup), "in_range_episodes": int(len(in_score)),
            "in_range_flagged": float(in_flag.mean()), "bands": rows}


def markdown(report: dict[str, Any]) -> str:
    """The two tables as Markdown (ratios with 95% intervals)."""
    ident = report["identification"]
    names = list(ident["train"]["rows"][0]["ratio"])
    lines = ["### Identification: RMSE / constant's, training ranges", ""]
    rows = ident["train"]["rows"]
    lines.append("| parameter | " + " | ".join(
        f"{r['since']} +{r['k']} (n={r['n']})" for r in rows) + " |")
    lines.append("|---|" + "---|" * len(rows))
    for nm in names:
        cells = [f"{r['ratio'][nm]:.2f} [{r['ci95'][nm][0]:.2f}, {r['ci95'][nm][1]:.2f}]"
                 for r in rows]
        lines.append(f"| {nm} | " + " | ".join(cells) + " |")
    held = {b: v for b, v in ident.items() if b != "train"}
    if held:
        k = report["ood"]["k"]
        lines += ["", f"### Identification in held-out bands: RMSE / constant's at contact "
                      f"+{k} (the band's parameter)", "", "| band | n | ratio [95% CI] |",
                  "|---|---:|---|"]
        for band, tab in held.items():
            row = next((r for r in tab["rows"] if r["since"] == "contact" and r["k"] == k),
                       None)
            param = tab.get("parameter")
            if row is None or param is None:
                continue
            lo, hi = row["ci95"][param]
            lines.append(f"| {band} | {row['n']} | {row['ratio'][param]:.2f} "
                         f"[{lo:.2f}, {hi:.2f}] |")
    ood = report["ood"]
    lines += ["", f"### Out of distribution (score at contact +{ood['k']}; flagged: score > 1 "
                  f"from step {ood['warmup']} to the end)", "",
              f"In-range episodes flagged: {ood['in_range_flagged']:.3f} "
              f"(n={ood['in_range_episodes']})", "",
              "| band | range | AUROC | flagged | failing | failing flagged |",
              "|---|---|---:|---:|---:|---:|"]
    for name, r in ood["bands"].items():
        ff = "-" if r["failing_flagged"] is None else f"{r['failing_flagged']:.2f}"
        rng = "" if r["band"] is None else f"[{r['band'][0]:.4g}, {r['band'][1]:.4g}]"
        lines.append(f"| {name} | {rng} | {r['auroc']:.2f} | {r['flagged']:.2f} | "
                     f"{r['failing']} | {ff} |")
    return "\n".join(lines)
