"""Subcommands of the RDPG + HER method: ``rdpg-her`` (train), ``evaluate``, ``table2``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meta_train.common.config import add_dataclass_flags, build_config, flags_to_values
from meta_train.rdpg.config import RDPGConfig, preset_values


def resolve_config(args: argparse.Namespace) -> RDPGConfig:
    """The preset's values (if any) overridden by the flags given."""
    values = preset_values(args.preset) if args.preset else {}
    values.update(flags_to_values(args, RDPGConfig))
    return build_config(RDPGConfig, values)


def cmd_rdpg_her(args: argparse.Namespace) -> int:
    """Train (or resume) a run, then evaluate its final policy."""
    from meta_train.rdpg.trainer import RDPGTrainer

    cfg = resolve_config(args)
    trainer = RDPGTrainer(cfg, resume=args.resume)
    print(f"run: {trainer.run_dir}  device: {trainer.device}  "
          f"obs {trainer.obs_dim} act {trainer.act_dim} mu {trainer.mu_dim} "
          f"horizon {trainer.horizon}", file=sys.stderr)
    try:
        trainer.train()
        result = {}
        for d in ("train", "heldout") if args.final_eval_episodes > 0 else ():
            try:
                result[d] = trainer.evaluate(d, episodes=args.final_eval_episodes).to_dict()
            except TypeError:  # an env without dynamics randomization (toy envs)
                print(f"note: {cfg.env_id} has no '{d}' dynamics setting; skipped",
                      file=sys.stderr)
    finally:
        trainer.close()
    (trainer.run_dir / "final_eval.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({"run_dir": str(trainer.run_dir), "env_steps": trainer.env_steps,
                      **result}, indent=1))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Success rates of a run's policy with 95% intervals."""
    from meta_train.common.evaluation import evaluate_run

    results = evaluate_run(args.run_dir, args.episodes, args.dynamics, seed=args.seed,
                           which=args.which, fixed=args.fix,
                           episode_steps=args.episode_steps)
    print(f"{'dynamics':<10} {'success@0.05 [95% CI]':<24} {'success@0.07 [95% CI]':<24}")
    for d, r in results.items():
        print(f"{d:<10} {r.row()}")
    if args.json:
        Path(args.json).write_text(json.dumps({d: r.to_dict() for d, r in results.items()},
                                              indent=1))
    return 0


def cmd_table2(args: argparse.Namespace) -> int:
    """Peng's Table II: four variants trained on one budget and evaluated."""
    from meta_train.rdpg.table2 import run_table2

    run_table2(resolve_config(args), episodes=args.episodes, variants=args.variants,
               out=args.out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``rdpg-her``, ``evaluate`` and ``table2`` to ``meta-train``."""
    p = sub.add_parser("rdpg-her", help="train a policy with RDPG + HER (omniscient critic)")
    p.add_argument("--preset", help="YAML preset name (meta_train/rdpg/presets) or path")
    p.add_argument("--resume", action="store_true",
                   help="continue the run named by --run-name from its last complete checkpoint")
    p.add_argument("--final-eval-episodes", type=int, default=100,
                   help="episodes of the final evaluation on training and held-out dynamics")
    add_dataclass_flags(p, RDPGConfig)
    p.set_defaults(func=cmd_rdpg_her)

    p = sub.add_parser("evaluate", help="success rates with 95%% CIs on train/held-out dynamics")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--dynamics", nargs="+", default=["train", "heldout"],
                   choices=["train", "heldout", "nominal"])
    p.add_argument("--seed", type=int, default=10_000)
    p.add_argument("--which", default="best",
                   choices=["best", "final", "latest", "latest-online"],
                   help="checkpoint: best (by the periodic evaluation), final or latest; "
                        "latest-online: the latest checkpoint's online actor where the run "
                        "averages it (--actor-ema)")
    p.add_argument("--fix", nargs="+", default=[], metavar="PARAM",
                   help="keep these dynamics parameters or groups at nominal (e.g. "
                        "obs_noise_frac, puck_friction, joint_damping_scale): what "
                        "randomizing them costs the policy")
    p.add_argument("--episode-steps", type=int, metavar="N",
                   help="episodes of N control steps instead of the run's (success at the "
                        "last step)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("table2", help="train and evaluate Peng's four variants on one budget")
    p.add_argument("--preset", help="YAML preset name or path")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--variants", nargs="+", default=["lstm", "ff_history", "ff", "ff_norand"])
    p.add_argument("--out", default="docs/table2.json")
    add_dataclass_flags(p, RDPGConfig)
    p.set_defaults(func=cmd_table2)
