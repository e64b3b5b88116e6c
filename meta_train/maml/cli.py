"""Subcommand ``maml``: ``meta-train maml <task>`` (sinusoid, fewshot, pusher-dynamics)."""

from __future__ import annotations

import argparse

from meta_train.common.tasks.cli import register_task_commands
from meta_train.maml.config import PRESETS_DIR, MAMLConfig


def _run(task_name: str, cfg: MAMLConfig, task_cfg, resume: bool, command: str) -> int:
    from meta_train.maml.train import train_maml

    train_maml(task_name, cfg, task_cfg, resume=resume, command=command)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``maml`` to ``meta-train``."""
    register_task_commands(sub, "maml", "MAML (Finn et al. 2017): meta-learn an initialisation "
                           "that a few gradient steps adapt (--first-order, --meta-sgd)",
                           MAMLConfig, PRESETS_DIR, _run)
