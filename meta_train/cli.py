"""``meta-train``: command line of the training side.

    meta-train rdpg-her --preset pusher [--flags...] [--resume]
    meta-train evaluate RUN_DIR --episodes 100 --dynamics train heldout
    meta-train export RUN_DIR --out models/pusher_policy.onnx
    meta-train estimator --policy-run RUN_DIR --out models/pusher_estimator.onnx
    meta-train table2 --preset pusher --total-env-steps N

Errors in input (bad flags, presets, checkpoints, models) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meta_train.checkpoint import CheckpointError
from meta_train.collector import CollectorError
from meta_train.config import (
    ConfigError,
    RDPGConfig,
    add_dataclass_flags,
    build_config,
    flags_to_values,
    load_preset,
)


def _resolve_rdpg(args) -> RDPGConfig:
    values = load_preset(args.preset) if args.preset else {}
    values.update(flags_to_values(args, RDPGConfig))
    return build_config(RDPGConfig, values)


def cmd_rdpg_her(args) -> int:
    from meta_train.rdpg import RDPGTrainer

    cfg = _resolve_rdpg(args)
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


def cmd_evaluate(args) -> int:
    from meta_train.evaluate import evaluate_run

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


def cmd_export(args) -> int:
    from meta_train.export_run import export_run_policy

    path = export_run_policy(args.run_dir, args.out, which=args.which)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def cmd_estimator(args) -> int:
    from meta_train.estimator import EstimatorConfig, train_estimator

    values = flags_to_values(args, EstimatorConfig)
    cfg = build_config(EstimatorConfig, values)
    train_estimator(cfg)
    return 0


def cmd_table2(args) -> int:
    from meta_train.table2 import run_table2

    base = _resolve_rdpg(args)
    run_table2(base, episodes=args.episodes, variants=args.variants, out=args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meta-train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("rdpg-her", help="train a policy with RDPG + HER (omniscient critic)")
    p.add_argument("--preset", help="YAML preset name (meta_train/presets) or path")
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

    p = sub.add_parser("export", help="export a run's policy to ONNX with its metadata")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True)
    p.add_argument("--which", default="best", choices=["best", "final", "latest"])
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("estimator", help="train and export the dynamics estimator")
    from meta_train.estimator import EstimatorConfig

    add_dataclass_flags(p, EstimatorConfig)
    p.set_defaults(func=cmd_estimator)

    p = sub.add_parser("table2", help="train and evaluate Peng's four variants on one budget")
    p.add_argument("--preset", help="YAML preset name or path")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--variants", nargs="+", default=["lstm", "ff_history", "ff", "ff_norand"])
    p.add_argument("--out", default="docs/table2.json")
    add_dataclass_flags(p, RDPGConfig)
    p.set_defaults(func=cmd_table2)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"meta-train: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except CollectorError as e:  # the run itself was sound: its last checkpoint is kept
        print(f"meta-train: error: {e}\nmeta-train: the last complete checkpoint is kept "
              f"(use --resume)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("meta-train: interrupted; the last complete checkpoint is kept (use --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
