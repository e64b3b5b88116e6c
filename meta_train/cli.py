"""``meta-train``: the command line of the training side.

Each method's sub-package registers its own subcommands (its ``cli.register(subparsers)``), so
this file does not grow with the methods:

    meta-train rdpg-her --preset pusher [--flags...] [--resume]
    meta-train evaluate RUN_DIR --episodes 100 --dynamics train heldout
    meta-train table2 --preset pusher --total-env-steps N
    meta-train export RUN_DIR --out models/pusher_policy.onnx
    meta-train estimator --preset pusher --policy models/pusher_policy.onnx
    meta-train evaluate-model models/pusher_policy.onnx --episodes 1000 --record
    meta-train maml sinusoid | meta-lstm pusher-dynamics | baselines fewshot [--resume]
    meta-train compare-adaptation RUN RUN ... --out result.json
    meta-train nas --preset estimator --sampler controller --storage sqlite:///runs/nas/nas.db

Errors in input (bad flags, presets, checkpoints, models, datasets) print one line and exit 2;
a run that fails for another reason keeps its last checkpoint and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from meta_train.common.checkpoint import CheckpointError
from meta_train.common.config import ConfigError
from meta_train.common.runs import RunError

SHARED = "common"
"""The sub-package every method builds on; it registers no subcommand."""


def method_cli_modules() -> list[str]:
    """``meta_train.<method>.cli`` of every method sub-package that has one, by name."""
    here = Path(__file__).resolve().parent
    out = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if info.ispkg and info.name != SHARED and (here / info.name / "cli.py").is_file():
            out.append(f"meta_train.{info.name}.cli")
    return out


def build_parser() -> argparse.ArgumentParser:
    """The parser with every method's subcommands."""
    parser = argparse.ArgumentParser(prog="meta-train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in method_cli_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"meta-train: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except RunError as e:  # the run itself was sound: its last checkpoint is kept
        print(f"meta-train: error: {e}\nmeta-train: the last complete checkpoint is kept "
              f"(use --resume)", file=sys.stderr)
        return 1
    except Exception as e:
        # A missing, altered or unreadable exported model (read through the robot's runtime,
        # which is only imported by the commands that use it).
        runtime = sys.modules.get("meta_control.runtime")
        if runtime is None or not isinstance(e, runtime.ModelError):
            raise
        print(f"meta-train: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meta-train: interrupted; the last complete checkpoint is kept (use --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
