"""Subcommands ``nas`` (run or join a study) and ``nas-best`` (write a study's best config)."""

from __future__ import annotations

import argparse
import json
import sys

from meta_train.common.config import add_dataclass_flags, build_config, flags_to_values
from meta_train.nas.config import STUDY_FIELDS, NASConfig, preset_values


def resolve(args: argparse.Namespace) -> tuple[NASConfig, str]:
    """The config and study name: a preset's values (or, joining an existing study without a
    preset, the values stored in it) overridden by the flags given."""
    from meta_train.nas.study import stored_config, study_name_for

    flags = flags_to_values(args, NASConfig)
    if args.preset:
        values = preset_values(args.preset)
    elif "objective" not in flags and flags.get("study_name"):
        values = stored_config(flags.get("storage", NASConfig().storage), flags["study_name"])
    else:
        values = {}
    values.update(flags)
    cfg = build_config(NASConfig, values)
    return cfg, cfg.study_name or study_name_for(cfg, args.preset or "")


def cmd_nas(args: argparse.Namespace) -> int:
    """Run (or join, or resume) a study, then write its best config."""
    from meta_train.common.objectives import available

    if args.list:
        for name, obj in available().items():
            print(f"{name:<16} {obj.direction:<9} {obj.metric}\n{'':<16} {obj.description}")
        return 0
    from meta_train.nas.study import run_study

    cfg, name = resolve(args)
    summary = run_study(cfg, name)
    print(json.dumps(summary, indent=1, default=str))
    return 0 if summary.get("best") is not None or cfg.n_trials == 0 else 1


def cmd_nas_best(args: argparse.Namespace) -> int:
    """Write the best config of a stored study (e.g. one that many machines ran)."""
    from pathlib import Path

    import optuna

    from meta_train.common import objectives as registry
    from meta_train.nas.space import SearchSpace
    from meta_train.nas.study import best_config, open_storage, stored_config, write_best

    stored = stored_config(args.storage, args.study_name)
    cfg = build_config(NASConfig, {k: stored[k] for k in STUDY_FIELDS if k in stored})
    objective = registry.get(cfg.objective)
    space = SearchSpace.from_mapping(cfg.space)
    study = optuna.load_study(study_name=args.study_name, storage=open_storage(args.storage))
    out = Path(args.out or f"runs/nas/{args.study_name}/best.yaml")
    values, best = best_config(cfg, study, objective, space, out.parent)
    write_best(out, values, study, best, objective, args.storage)
    print(f"trial {best.number}: {best.value:.6g}; wrote {out}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``nas`` and ``nas-best`` to ``meta-train``."""
    p = sub.add_parser(
        "nas", help="architecture and hyperparameter search (Zoph & Le's controller, TPE or "
                    "random) on Optuna",
        description="Run a study, join one (the same command on more machines, with a shared "
                    "--storage), or resume one; then write the best config as a preset of the "
                    "trainer. View it with: optuna-dashboard <storage URL>")
    p.add_argument("--preset", help="NAS preset (meta_train/nas/presets: estimator, rdpg, "
                                    "dynamics_model, synthetic) or path to one")
    p.add_argument("--list", action="store_true", help="list the registered objectives")
    add_dataclass_flags(p, NASConfig)
    p.set_defaults(func=cmd_nas)

    p = sub.add_parser("nas-best", help="write the best config of a stored study")
    p.add_argument("--storage", default=NASConfig().storage, help="Optuna storage URL")
    p.add_argument("--study-name", required=True)
    p.add_argument("--out", default="", help="default runs/nas/<study>/best.yaml")
    p.set_defaults(func=cmd_nas_best)

