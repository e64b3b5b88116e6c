"""How hard the first push is: a trained policy beside the contact teacher, by friction band.

    .venv/bin/python bench/first_push.py runs/RQ --which final --episodes 150 --seed 20000

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
from success_by_friction import EDGES

from meta_train.checkpoint import CheckpointError
from meta_train.evaluate import make_eval_env
from meta_train.policy import BatchPolicy
from meta_train.rdpg import load_actor_from_run
from sim.scripted import ScriptedPusher


def first_push_peaks(
    env, act, reset, episodes: int, seed: int, moving: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampled puck friction, first-push peak puck speed (m/s; 0 if the puck never moved) and
    success at 0.05 m of ``episodes`` episodes (reset seeds seed + i)."""
    k = env.dynamics_space.index("puck_friction")
    client = env.world.sim.client
    friction, peaks, success = [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        reset()
        peak, state = 0.0, "still"  # still -> pushed -> done
        for _ in range(env.max_episode_steps):
            obs, _, _, _, info = env.step(act(obs))
            if state == "done":
                continue
            speed = float(np.linalg.norm(client.getBaseVelocity(env.world.puck_uid)[0][:2]))
            if state == "still" and speed > moving:
                state = "pushed"
            if state == "pushed":
                peak = max(peak, speed)
                if speed < 0.5 * moving:
                    state = "done"
        friction.append(float(info["mu_raw"][k]))
        peaks.append(peak)
        success.append(bool(info["is_success_0.05"]))
    return np.array(friction), np.array(peaks), np.array(success)


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
        actor, cfg = load_actor_from_run(args.run, args.which)
    except (CheckpointError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    env = make_eval_env(cfg.env_id, cfg.env_kwargs, "train").unwrapped
    if not hasattr(env, "world"):
        print(f"error: {cfg.env_id} is not a push env", file=sys.stderr)
        return 2
    policy = BatchPolicy(actor, cfg.variant, cfg.history, 1, "cpu")

    def act(obs):
        a = policy(obs["observation"][None], obs["desired_goal"][None])
        policy.observe_action(a)
        return a[0]

    teacher = ScriptedPusher(env, knowledge="contact", prior_friction=cfg.teacher_prior_friction)
    results = {
        "policy": first_push_peaks(env, act, policy.reset, args.episodes, args.seed,
                                   args.moving),
        "contact teacher": first_push_peaks(env, teacher, teacher.reset, args.episodes,
                                            args.seed, args.moving),
    }
    env.close()
    friction = results["policy"][0]
    print(f"{args.run} ({args.which}) beside the contact teacher (prior "
          f"{cfg.teacher_prior_friction:g}), {args.episodes} training-range tasks, reset seeds "
          f"{args.seed}+: first-push peak puck speed (m/s), median / p90, and success at 0.05 m")
    print("| puck friction | episodes | " + " | ".join(
        f"{n} median / p90 | {n} success" for n in results) + " |")
    print("|---|---:|" + "---:|---:|" * len(results))
    rows = []
    bands = list(zip(EDGES[:-1], EDGES[1:], strict=True)) + [(EDGES[0], EDGES[-1])]
    for lo, hi in bands:
        m = (friction >= lo) & (friction < hi)
        if not m.any():
            continue
        label = "all" if (lo, hi) == (EDGES[0], EDGES[-1]) else f"[{lo:g}, {hi:g})"
        row = {"band": label, "episodes": int(m.sum())}
        cells = []
        for name, (_, peaks, success) in results.items():
            med, p90 = (float(v) for v in np.percentile(peaks[m], [50, 90]))
            row[name] = {"median": med, "p90": p90, "success": float(success[m].mean())}
            cells.append(f"{med:.2f} / {p90:.2f} | {success[m].mean():.2f}")
        rows.append(row)
        print(f"| {label} | {int(m.sum())} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "which": args.which,
                                               "seed": args.seed, "moving": args.moving,
                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
