"""Peng et al.'s Table II on our sims: four policy variants, one budget, one evaluation.

    meta-train table2 --preset pusher --total-env-steps 300000 --episodes 100

Trains LSTM + randomization, FF + history, FF + randomization and FF without randomization
with the same configuration and seed, then evaluates each variant's best checkpoint (chosen by
the periodic evaluation during training, reset seeds 1,000,000 + i) on training-range dynamics
and on held-out dynamics outside the training ranges, on other seeds (10,000 + i, those of
``meta-train evaluate``), printing success at 0.05 m / 0.07 m with 95% Wilson intervals.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from meta_train.common.evaluation import evaluate_run
from meta_train.rdpg.config import RDPGConfig
from meta_train.rdpg.trainer import RDPGTrainer

LABELS = {
    "lstm": "LSTM, randomized",
    "ff_history": "FF + 8 past states/actions",
    "ff": "FF, randomized",
    "ff_norand": "FF, no randomization",
}


def run_table2(base: RDPGConfig, episodes: int, variants, out: str) -> dict:
    """Train and evaluate each variant; write ``out`` (JSON) and print a Markdown table."""
    stamp = int(time.time())
    results = {}
    for variant in variants:
        cfg = dataclasses.replace(base, variant=variant,
                                  run_name=f"{base.env_id}__table2__{variant}__{base.seed}__{stamp}")
        trainer = RDPGTrainer(cfg)
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        trainer.close()
        evals = evaluate_run(trainer.run_dir, episodes, ["train", "heldout"])
        results[variant] = {
            "label": LABELS[variant], "run_dir": str(trainer.run_dir),
            "env_steps": trainer.env_steps, "train_wall_s": round(train_s, 1),
            "env_steps_per_s": round(trainer.env_steps / train_s, 1),
            "train": evals["train"].to_dict(),
            "heldout": evals["heldout"].to_dict(),
        }
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"config": base.to_dict(), "results": results}, indent=1))
    print(markdown(results))
    return results


def markdown(results: dict) -> str:
    """The table, shaped like Peng's Table II (sim columns only)."""
    lines = ["| model | train dynamics @0.05 m | @0.07 m | held-out dynamics @0.05 m | @0.07 m |",
             "|---|---|---|---|---|"]
    for r in results.values():
        cells = []
        for d in ("train", "heldout"):
            for k in ("0.05", "0.07"):
                lo, hi = r[d][f"ci95_{k}"]
                cells.append(f"{r[d][f'success_{k}']:.2f} [{lo:.2f}, {hi:.2f}]")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
