"""Subcommand ``estimator``: train, evaluate and export the dynamics estimator."""

from __future__ import annotations

import argparse

from meta_train.common.config import add_dataclass_flags, build_config, flags_to_values
from meta_train.estimator.config import EstimatorConfig


def cmd_estimator(args: argparse.Namespace) -> int:
    """Train on rollouts of a policy run, report, export."""
    from meta_train.estimator.train import train_estimator

    train_estimator(build_config(EstimatorConfig, flags_to_values(args, EstimatorConfig)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``estimator`` to ``meta-train``."""
    p = sub.add_parser("estimator", help="train and export the dynamics estimator")
    add_dataclass_flags(p, EstimatorConfig)
    p.set_defaults(func=cmd_estimator)
