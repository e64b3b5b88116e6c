"""Subcommand ``meta-lstm``: ``meta-train meta-lstm <task>`` (sinusoid, fewshot,
pusher-dynamics)."""

from __future__ import annotations

import argparse

from meta_train.common.tasks.cli import register_task_commands
from meta_train.meta_lstm.config import PRESETS_DIR, MetaLSTMConfig


def _run(task_name: str, cfg: MetaLSTMConfig, task_cfg, resume: bool, command: str) -> int:
    from meta_train.meta_lstm.train import train_meta_lstm

    train_meta_lstm(task_name, cfg, task_cfg, resume=resume, command=command)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``meta-lstm`` to ``meta-train``."""
    register_task_commands(sub, "meta-lstm", "the Meta-LSTM learned optimiser (Ravi & "
                           "Larochelle 2017): an LSTM whose cell state is the learner's "
                           "parameters", MetaLSTMConfig, PRESETS_DIR, _run)
