"""Success by puck friction: where a trained policy fails, beside its teachers.

    .venv/bin/python bench/analysis/success_by_friction.py runs/F --which final \
        --episodes 150 --seed 20000
    .venv/bin/python bench/analysis/success_by_friction.py runs/panda_PP --which final \
        --episodes 300 --seed 20000 --teachers planning privileged

Rolls out the deterministic policy of a training run and the teachers (``--teachers``, by
default the three scripted ones: privileged reads the sampled friction and damping; observing
infers the friction from its own taps; contact: a slippery prior until its first contact, the
sampled values after; the last two start from the run's ``teacher_prior_friction``; planning:
sim/planner.py) on the same reset seeds, and prints
success at 0.05 m per band of the sampled puck friction (log-uniform over [0.1, 5] in training,
outside it held out), with the share of the policy's episodes that it failed after the puck had
been within 0.05 m of the goal (an overshoot, or a puck knocked off the goal). ``--json``
writes the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from meta_train.common.checkpoint import CheckpointError
from meta_train.common.evaluation import make_eval_env
from meta_train.common.policies import BatchPolicy, load_actor_from_run
from sim.planner import TEACHERS, make_teacher
from sim.scripted import KNOWLEDGE

EDGES = (0.0, 0.1, 0.3, 0.7, 1.5, 3.0, 5.0, float("inf"))


class Rollouts(NamedTuple):
    """Per-episode results of :func:`rollouts`."""

    friction: np.ndarray  # sampled puck friction
    success: np.ndarray  # success at 0.05 m at the last step
    reached: np.ndarray  # the puck was within 0.05 m of the goal at some step
    first_push_peak: np.ndarray  # peak puck speed (m/s) of the first push; 0 if never pushed


def rollouts(env, act, reset, episodes: int, seed: int, moving: float = 0.02) -> Rollouts:
    """Roll ``act`` out for ``episodes`` episodes (reset seeds seed + i) on the unwrapped push
    env. The first push runs from when the puck first moves faster than ``moving`` m/s until it
    first slows below half that; its peak planar speed is read from the simulator."""
    k = env.dynamics_space.index("puck_friction")
    client = env.world.sim.client
    friction, success, reached, peaks = [], [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        reset()
        closest, peak, push = np.inf, 0.0, "still"  # still -> pushed -> done
        for _ in range(env.max_episode_steps):
            obs, _, _, _, info = env.step(act(obs))
            closest = min(closest, float(info["distance"]))
            if push == "done":
                continue
            speed = float(np.linalg.norm(client.getBaseVelocity(env.world.puck_uid)[0][:2]))
            if push == "still" and speed > moving:
                push = "pushed"
            if push == "pushed":
                peak = max(peak, speed)
                if speed < 0.5 * moving:
                    push = "done"
        friction.append(float(info["mu_raw"][k]))
        success.append(bool(info["is_success_0.05"]))
        reached.append(closest < 0.05)
        peaks.append(peak)
    return Rollouts(np.array(friction), np.array(success), np.array(reached), np.array(peaks))


def friction_bands(friction: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(label, episode mask) of each non-empty band of ``EDGES``, then ``("all", ...)``."""
    bands = list(zip(EDGES[:-1], EDGES[1:], strict=True)) + [(EDGES[0], EDGES[-1])]
    out = []
    for lo, hi in bands:
        m = (friction >= lo) & (friction < hi)
        if m.any():
            out.append(("all" if (lo, hi) == (EDGES[0], EDGES[-1]) else f"[{lo:g}, {hi:g})", m))
    return out


def load_run_policy(run: str, which: str, dynamics: str):
    """A run's deterministic policy on its push env: ``(cfg, env, act, reset)``. Raises
    CheckpointError, OSError or ValueError on a missing, corrupt or non-push-env run."""
    actor, cfg = load_actor_from_run(run, which)
    env = make_eval_env(cfg.env_id, cfg.env_kwargs, dynamics)
    if not hasattr(env, "world"):
        env.close()
        raise ValueError(f"{cfg.env_id} is not a push env")
    policy = BatchPolicy(actor, cfg.variant, cfg.history, 1, "cpu")

    def act(obs):
        a = policy(obs["observation"][None], obs["desired_goal"][None])
        policy.observe_action(a)
        return a[0]

    return cfg, env, act, policy.reset


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print one row per friction band."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="training run directory")
    p.add_argument("--which", default="final", choices=["best", "final", "latest"])
    p.add_argument("--episodes", type=int, default=150)
    p.add_argument("--seed", type=int, default=20_000)
    p.add_argument("--dynamics", default="train", choices=["train", "heldout"])
    p.add_argument("--teachers", nargs="+", default=list(KNOWLEDGE), choices=TEACHERS)
    p.add_argument("--json", help="also write the table here")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error("--episodes must be >= 1")
    try:
        cfg, env, act, reset = load_run_policy(args.run, args.which, args.dynamics)
    except (CheckpointError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = {"policy": rollouts(env, act, reset, args.episodes, args.seed)}
    for knowledge in args.teachers:
        name = f"{knowledge} teacher"
        teacher = make_teacher(env, knowledge, cfg.config.get("teacher_prior_friction", 0.3))
        results[name] = rollouts(env, teacher, teacher.reset, args.episodes, args.seed)
    env.close()
    policy = results["policy"]
    left = policy.reached & ~policy.success  # failed after having reached the goal
    rows = []
    print(f"{args.run} ({args.which}), {args.episodes} episodes, {args.dynamics} dynamics, "
          f"reset seeds {args.seed}+; success at 0.05 m")
    names = ["policy", "policy, failed after reaching", *list(results)[1:]]
    print(f"| puck friction | episodes | {' | '.join(names)} |")
    print("|---|---:|" + "---:|" * len(names))
    for label, m in friction_bands(policy.friction):
        rates = {name: float(r.success[m].mean()) for name, r in results.items()}
        rates = {"policy": rates.pop("policy"),
                 "policy, failed after reaching": float(left[m].mean()), **rates}
        rows.append({"band": label, "episodes": int(m.sum()), **rates})
        print(f"| {label} | {int(m.sum())} | " + " | ".join(f"{r:.2f}" for r in rates.values())
              + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "which": args.which,
                                               "seed": args.seed, "dynamics": args.dynamics,
                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
