"""How hard the first push is: a trained policy beside the contact teacher, by friction band.

    .venv/bin/python bench/analysis/first_push.py runs/RQ --which final --episodes 150 --seed 20000

On training-range pusher tasks (reset seeds ``seed + i``), rolls out the deterministic policy of
a run and the contact teacher (with the run's ``teacher_prior_friction``) and measures each
episode's first push: the peak planar puck speed from when the puck first moves (faster than
``--moving`` m/s) until it first comes to rest again (slower than half that). The puck speed is
read from the simulator. Prints, per band of the sampled puck friction, the median and 90th
percentile of that peak and the success at 0.05 m of each. A policy that pushes a slippery
puck harder than the teacher slides it through the goal. ``--json`` writes the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from success_by_friction import friction_bands, load_run_policy, rollouts

from meta_train.common.checkpoint import CheckpointError
from sim.scripted import ScriptedPusher


def main(argv: list[str] | None = None) -> int:
    """Measure the first pushes and print one row per friction band."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="training run directory")
    p.add_argument("--which", default="final", choices=["best", "final", "latest"])
    p.add_argument("--episodes", type=int, default=150)
    p.add_argument("--seed", type=int, default=20_000)
    p.add_argument("--moving", type=float, default=0.02,
                   help="puck speed (m/s) above which the first push has begun")
    p.add_argument("--json", help="also write the table here")
    args = p.parse_args(argv)
    if args.episodes < 1 or not args.moving > 0.0:
        p.error("--episodes must be >= 1 and --moving > 0")
    try:
        cfg, env, act, reset = load_run_policy(args.run, args.which, "train")
    except (CheckpointError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    prior = cfg.config.get("teacher_prior_friction", 0.3)
    teacher = ScriptedPusher(env, knowledge="contact", prior_friction=prior)
    results = {
        "policy": rollouts(env, act, reset, args.episodes, args.seed, args.moving),
        "contact teacher": rollouts(env, teacher, teacher.reset, args.episodes, args.seed,
                                    args.moving),
    }
    env.close()
    print(f"{args.run} ({args.which}) beside the contact teacher (prior "
          f"{prior:g}), {args.episodes} training-range tasks, reset seeds "
          f"{args.seed}+: first-push peak puck speed (m/s), median / p90, and success at 0.05 m")
    print("| puck friction | episodes | " + " | ".join(
        f"{n} median / p90 | {n} success" for n in results) + " |")
    print("|---|---:|" + "---:|---:|" * len(results))
    rows = []
    for label, m in friction_bands(results["policy"].friction):
        row = {"band": label, "episodes": int(m.sum())}
        cells = []
        for name, r in results.items():
            med, p90 = (float(v) for v in np.percentile(r.first_push_peak[m], [50, 90]))
            success = float(r.success[m].mean())
            row[name] = {"median": med, "p90": p90, "success": success}
            cells.append(f"{med:.2f} / {p90:.2f} | {success:.2f}")
        rows.append(row)
        print(f"| {label} | {int(m.sum())} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "which": args.which,
                                               "seed": args.seed, "moving": args.moving,
                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
