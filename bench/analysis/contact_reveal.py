"""When the contact teacher learns the dynamics: before or after its first tap, and how.

    .venv/bin/python bench/analysis/contact_reveal.py --episodes 100 --seed 20000

Drives the contact teacher (``ScriptedPusher(knowledge="contact")``) on training-range pusher
tasks (reset seeds ``seed + i``) up to the step at which it plans its first tap, and counts the
tasks in which it already knew the true friction and damping then: the dynamics were revealed by
the approach, either because the puck had moved more than ``reveal_m`` from its start or because
the tip had come within 2 mm of it. Prints the counts and the puck travel and tip gap (mm) at
the reveal of each such task.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import gymnasium as gym
import numpy as np

import sim  # noqa: F401  (registers the envs)
from sim.scripted import TIP_RADIUS_M, ScriptedPusher
from sim.world import PUCK_RADIUS_M


def main(argv: list[str] | None = None) -> int:
    """Print how many first taps were planned knowing the dynamics, and why."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=20_000)
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error("--episodes must be >= 1")
    warnings.filterwarnings("ignore", module="gymnasium")
    env = gym.make("MetaPusherPush-v0").unwrapped
    teacher = ScriptedPusher(env, knowledge="contact")
    taps, early = 0, []
    for ep in range(args.episodes):
        obs, _ = env.reset(seed=args.seed + ep)
        teacher.reset()
        start, at_reveal = env.world.puck_xy().copy(), None
        for _ in range(env.max_episode_steps):
            action = teacher(obs)
            if teacher.knows_dynamics and at_reveal is None:
                puck = env.world.puck_xy()
                gap = np.linalg.norm(env.world.ee_position()[:2] - puck) - PUCK_RADIUS_M
                at_reveal = (1e3 * float(np.linalg.norm(puck - start)),
                             1e3 * float(gap - TIP_RADIUS_M))
            if teacher._tap is not None:  # the first tap is planned
                taps += 1
                if at_reveal is not None:
                    early.append(at_reveal)
                break
            obs, *_ = env.step(action)
    env.close()
    moved = [r for r in early if r[0] > 1e3 * teacher.reveal_m]
    print(f"{args.episodes} tasks (reset seeds {args.seed}+): {taps} first taps, {len(early)} "
          f"planned knowing the dynamics: {len(moved)} after the approach moved the puck, "
          f"{len(early) - len(moved)} after the tip came within 2 mm of it")
    for travel, gap in sorted(early):
        print(f"  puck travel {travel:5.1f} mm, tip gap {gap:5.1f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
