"""Subcommands ``baselines`` (``meta-train baselines <task>``) and ``compare-adaptation``
(saved runs of any method on the same test tasks, compared task by task)."""

from __future__ import annotations

import argparse

from meta_train.baselines.config import PRESETS_DIR, BaselinesConfig
from meta_train.common.tasks.cli import register_task_commands


def _run(task_name: str, cfg: BaselinesConfig, task_cfg, resume: bool, command: str) -> int:
    from meta_train.baselines.train import train_baselines

    train_baselines(task_name, cfg, task_cfg, resume=resume, command=command)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Tables of runs on the same test tasks, with paired differences."""
    from meta_train.common.tasks.compare import compare_runs

    compare_runs(args.runs, references=args.reference, out=args.out, markdown=args.markdown)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``baselines`` and ``compare-adaptation`` to ``meta-train``."""
    register_task_commands(sub, "baselines", "baselines of the meta-learners on the same "
                           "tasks: no adaptation, fine-tuning, nearest class mean, ReBAL's "
                           "recurrent model, an oracle", BaselinesConfig, PRESETS_DIR, _run)
    p = sub.add_parser("compare-adaptation", help="compare saved runs (meta-train maml / "
                       "meta-lstm / baselines) on the same test tasks, task by task")
    p.add_argument("runs", nargs="+", help="run directories (each with results.json and "
                   "per_task.npz)")
    p.add_argument("--reference", nargs="*", default=["no-adaptation", "fine-tune"],
                   help="methods every other is compared with by paired differences")
    p.add_argument("--out", help="write the comparison as JSON here")
    p.add_argument("--markdown", help="write the tables as Markdown here")
    p.set_defaults(func=cmd_compare)
