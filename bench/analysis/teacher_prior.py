"""Success of a scripted teacher by puck friction band, for several friction priors.

    .venv/bin/python bench/analysis/teacher_prior.py --knowledge contact \
        --priors 0.1 0.15 0.2 0.3 \
        --episodes 150 --seed 20000

The observing and contact teachers act on a friction prior (``ScriptedPusher(prior_friction=)``,
``--teacher-prior-friction`` in training) until the puck shows its own; the prior sets how hard
their first tap is. Rolls out the teacher with each prior on the same reset seeds (training
dynamics, or ``--dynamics heldout``) and prints success at 0.05 m per band of the sampled puck
friction (the bands of ``success_by_friction.py``), one column per prior. ``--json`` writes the
table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from success_by_friction import friction_bands, rollouts

from meta_train.common.evaluation import make_eval_env
from sim.scripted import ScriptedPusher


def main(argv: list[str] | None = None) -> int:
    """Roll out the teacher with each prior and print one row per friction band."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--knowledge", default="contact", choices=["contact", "observing"])
    p.add_argument("--priors", type=float, nargs="+", default=[0.1, 0.15, 0.2, 0.3])
    p.add_argument("--env", default="MetaPusherPush-v0")
    p.add_argument("--episodes", type=int, default=150)
    p.add_argument("--seed", type=int, default=20_000)
    p.add_argument("--dynamics", default="train", choices=["train", "heldout"])
    p.add_argument("--json", help="also write the table here")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error("--episodes must be >= 1")
    if not all(prior > 0.0 for prior in args.priors):
        p.error("--priors must be > 0")
    env = make_eval_env(args.env, {}, args.dynamics)
    results = {}
    for prior in args.priors:
        teacher = ScriptedPusher(env, knowledge=args.knowledge, prior_friction=prior)
        results[prior] = rollouts(env, teacher, teacher.reset, args.episodes, args.seed)
    env.close()
    print(f"{args.knowledge} teacher, {args.episodes} episodes, {args.dynamics} dynamics, "
          f"reset seeds {args.seed}+; success at 0.05 m per friction prior")
    print("| puck friction | episodes | " + " | ".join(f"prior {p:g}" for p in results) + " |")
    print("|---|---:|" + "---:|" * len(results))
    rows = []
    for label, m in friction_bands(next(iter(results.values())).friction):
        rates = {f"prior {p:g}": float(r.success[m].mean()) for p, r in results.items()}
        rows.append({"band": label, "episodes": int(m.sum()), **rates})
        print(f"| {label} | {int(m.sum())} | " + " | ".join(f"{r:.2f}" for r in rates.values())
              + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"knowledge": args.knowledge, "env": args.env, "seed": args.seed,
             "dynamics": args.dynamics, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
