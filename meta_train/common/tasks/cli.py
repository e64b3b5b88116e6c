"""The ``meta-train <method> <task>`` command shape every meta-learning method shares.

Each method registers one command whose sub-commands are the task families
(:data:`~meta_train.common.tasks.TASKS`); the flags are the method's config fields and the
task's. Without ``--preset``, the method's preset named after the task is used where it has
one (``meta_train/<method>/presets/<task>.yaml``), so ``meta-train maml sinusoid`` is the
paper's setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meta_train.common.config import (
    ConfigError,
    add_dataclass_flags,
    build_config,
    flags_to_values,
    load_preset,
)
from meta_train.common.tasks import TASKS

RunFn = Callable[[str, Any, Any, bool, str], int]
"""``run(task_name, method_cfg, task_cfg, resume, command) -> exit status``."""


def resolve_configs(task_name: str, method_cls: type, presets_dir: Path,
                    preset: str | None, flags: dict[str, Any]) -> tuple[Any, Any]:
    """The method's and the task's configs: the preset (``preset``, else the task's default
    preset where there is one) overridden by ``flags``."""
    task_cls = TASKS[task_name].config_cls
    if preset:
        values = load_preset(preset, presets_dir)
    elif (presets_dir / f"{task_name}.yaml").is_file():
        values = load_preset(task_name, presets_dir)
    else:
        values = {}
    values.update(flags)
    method_names = {f.name for f in dataclasses.fields(method_cls)}
    task_names = {f.name for f in dataclasses.fields(task_cls)}
    unknown = sorted(set(values) - method_names - task_names)
    if unknown:
        raise ConfigError(f"unknown {method_cls.__name__} / {task_cls.__name__} fields: "
                          f"{', '.join(unknown)}")
    method_cfg = build_config(method_cls, {k: v for k, v in values.items() if k in method_names})
    task_cfg = build_config(task_cls, {k: v for k, v in values.items() if k in task_names})
    return method_cfg, task_cfg


def command_line(prefix: str, preset: str | None, flags: dict[str, Any]) -> str:
    """The command that reproduces a run (for its results)."""
    out = prefix + (f" --preset {preset}" if preset else "")
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out += f" {flag}" if value else f" --no-{flag[2:]}"
        else:
            out += f" {flag} {json.dumps(value) if isinstance(value, list | dict) else value}"
    return out


def _run(args: argparse.Namespace, *, command: str, task_name: str, method_cls: type,
         presets_dir: Path, run: RunFn) -> int:
    flags = {**flags_to_values(args, method_cls),
             **flags_to_values(args, TASKS[task_name].config_cls)}
    method_cfg, task_cfg = resolve_configs(task_name, method_cls, presets_dir, args.preset,
                                           flags)
    line = command_line(f"meta-train {command} {task_name}", args.preset, flags)
    if args.resume:
        line += " --resume"
    return run(task_name, method_cfg, task_cfg, args.resume, line)


def register_task_commands(sub: argparse._SubParsersAction, command: str, help: str,  # noqa: A002
                           method_cls: type, presets_dir: Path, run: RunFn) -> None:
    """Add ``meta-train <command> <task>`` for every task family."""
    p = sub.add_parser(command, help=help, description=help)
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    method_fields = {f.name for f in dataclasses.fields(method_cls)}
    for name, task in TASKS.items():
        clash = method_fields & {f.name for f in dataclasses.fields(task.config_cls)}
        if clash:
            raise ValueError(f"{method_cls.__name__} and {task.config_cls.__name__} share "
                             f"fields {sorted(clash)}")
        tp = tasks.add_parser(name, help=task.help, description=task.help)
        default = presets_dir / f"{name}.yaml"
        tp.add_argument("--preset", help="YAML preset name (in "
                        f"{presets_dir.parent.name}/presets) or path; default "
                        + (default.stem if default.is_file() else "none"))
        tp.add_argument("--resume", action="store_true",
                        help="continue the run named by --run-name from its last checkpoint")
        add_dataclass_flags(tp, method_cls)
        add_dataclass_flags(tp, task.config_cls)
        tp.set_defaults(func=functools.partial(_run, command=command, task_name=name,
                                               method_cls=method_cls,
                                               presets_dir=presets_dir, run=run))
