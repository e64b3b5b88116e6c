"""Subcommands ``export`` (a run's policy to ONNX with its deployment contract) and
``evaluate-model`` (an exported model measured as the robot runs it)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_export(args: argparse.Namespace) -> int:
    """Export the chosen checkpoint's actor."""
    from meta_train.export.run import export_run_policy

    path = export_run_policy(args.run_dir, args.out, which=args.which)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` and ``evaluate-model`` to ``meta-train``."""
    p = sub.add_parser("export", help="export a run's policy to ONNX with its metadata")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True)
    p.add_argument("--which", default="best", choices=["best", "final", "latest"])
    p.set_defaults(func=cmd_export)
    register_evaluate_model(sub)


def cmd_evaluate_model(args: argparse.Namespace) -> int:
    """Measure an exported model through the runtime; optionally record it in its sidecar."""
    import json

    from meta_train.export.evaluate_model import evaluate_model, headline, record_evaluation

    result = evaluate_model(args.model, args.episodes, args.dynamics, args.seed,
                            args.episode_steps, args.policy, args.contact_k, args.limits)
    result["command"] = (
        f"meta-train evaluate-model {args.model} --episodes {args.episodes} --dynamics "
        f"{args.dynamics} --seed {args.seed}"
        + (f" --episode-steps {args.episode_steps}" if args.episode_steps else "")
        + (f" --policy {args.policy}" if args.policy else "")
        + (f" --contact-k {args.contact_k}" if args.contact_k is not None else "")
        + (f" --limits {args.limits}" if args.limits else ""))
    print(headline(result))
    if result["kind"] == "estimator":
        for name, ratio in result["per_parameter"].items():
            print(f"  {name:<32} {ratio:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.record:
        print(f"recorded in {record_evaluation(args.model, result)}")
    return 0


def register_evaluate_model(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate-model`` to ``meta-train``."""
    p = sub.add_parser("evaluate-model",
                       help="measure an exported ONNX model as the robot runs it (its sidecar "
                            "can record the result)")
    p.add_argument("model", help="a policy or estimator .onnx (its .json beside it)")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--dynamics", default="train", choices=["train", "heldout", "nominal"])
    p.add_argument("--seed", type=int, default=10_000, help="reset seed of the first episode")
    p.add_argument("--episode-steps", type=int, metavar="N",
                   help="episodes of N control steps instead of the training env's")
    p.add_argument("--policy", help="estimators: the policy that drives the arm (default: "
                                    "<robot>_policy.onnx beside the estimator)")
    p.add_argument("--contact-k", type=int, metavar="K",
                   help="estimators: score the estimate K steps after the first contact with "
                        "the puck instead of after the episode's last state")
    p.add_argument("--limits", metavar="LIMITS",
                   help="shape the policy's commands with the controller's motion limiter and "
                        "this limits file (a name in config/limits/, e.g. panda, or a path), "
                        "as the controller runs on the arm (forward position commands); "
                        "default: the policy's offsets as they come, as in training")
    p.add_argument("--json", help="also write the result to this JSON file")
    p.add_argument("--record", action="store_true",
                   help="write the result into the model's sidecar (evaluation field)")
    p.set_defaults(func=cmd_evaluate_model)
