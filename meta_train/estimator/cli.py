"""Subcommand ``estimator``: train, calibrate, evaluate and export the dynamics estimator."""

from __future__ import annotations

import argparse
import json

from meta_train.common.config import add_dataclass_flags, build_config, flags_to_values
from meta_train.estimator.config import EstimatorConfig, preset_values


def cmd_estimator(args: argparse.Namespace) -> int:
    """Datasets from a policy's interaction, training, OOD rule, export and report."""
    from meta_train.estimator.train import train_estimator

    values = preset_values(args.preset) if args.preset else {}
    flags = flags_to_values(args, EstimatorConfig)
    values.update(flags)
    cfg = build_config(EstimatorConfig, values)
    command = "meta-train estimator" + (f" --preset {args.preset}" if args.preset else "")
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            command += f" {flag}" if value else f" --no-{flag[2:]}"
        else:
            command += f" {flag} {json.dumps(value) if isinstance(value, list) else value}"
    train_estimator(cfg, command=command)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``estimator`` to ``meta-train``."""
    p = sub.add_parser("estimator", help="train and export the dynamics estimator and its "
                                         "out-of-distribution rule")
    p.add_argument("--preset", help="YAML preset name (meta_train/estimator/presets) or path")
    add_dataclass_flags(p, EstimatorConfig)
    p.set_defaults(func=cmd_estimator)
