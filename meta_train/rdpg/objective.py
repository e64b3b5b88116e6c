"""The recurrent policy (RDPG + HER) as a search objective (``meta_train.common.objectives``).

A trial trains a run with :class:`~meta_train.rdpg.trainer.RDPGTrainer` in the trial's scratch
folder on whatever budget its values say (a short ``total_env_steps``), and scores its final
policy by the mean final puck-goal distance over ``eval_episodes`` episodes of the training
dynamics on seeds of their own (2,000,000 on; the periodic evaluations use 1,000,000 on and
``meta-train evaluate`` 10,000 on). The distance, not the success rate: after a short budget
few policies succeed, and the distance still ranks them. Each periodic evaluation reports its
distance, so pruners apply.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from meta_train.common.config import build_config
from meta_train.common.objectives import Reporter, TrainableObjective, register
from meta_train.rdpg.config import RDPGConfig, preset_values

VALIDATION_SEED = 2_000_000


def check(values: dict[str, Any]) -> RDPGConfig:
    return build_config(RDPGConfig, dict(values))


def evaluate(values: dict[str, Any], report: Reporter, workdir: Path) -> float:
    from meta_train.rdpg.trainer import RDPGTrainer

    cfg = check({**values, "run_dir": str(workdir), "run_name": "trial", "progress": False,
                 "tensorboard": False})
    trainer = RDPGTrainer(cfg)
    log = trainer.progress.log

    def log_and_report(row: dict) -> None:
        log(row)
        if "eval_distance_m" in row:
            report(int(row["env_steps"]), float(row["eval_distance_m"]))

    trainer.progress.log = log_and_report
    try:
        trainer.train()
        return trainer.evaluate("train", seed=VALIDATION_SEED).final_distance_m
    finally:
        trainer.close()


RDPG = register(TrainableObjective(
    name="rdpg",
    description="the recurrent policy (meta-train rdpg-her) on a short budget",
    direction="minimize",
    metric="mean final puck-goal distance (m) of the final policy on validation episodes",
    fields=tuple(f.name for f in dataclasses.fields(RDPGConfig)),
    base_values=lambda preset: preset_values(preset) if preset else {},
    check=check,
    evaluate=evaluate,
    trainer_command="meta-train rdpg-her --preset {preset}",
))
