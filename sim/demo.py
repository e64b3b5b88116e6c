"""Roll out random and scripted pushes over randomized dynamics and print a summary.

sim-demo --env MetaPusherPush-v0 --episodes 10 --seed 0
"""

from __future__ import annotations

import argparse
import sys
import warnings

import gymnasium as gym
import numpy as np

import sim
from sim.dynamics import DynamicsConfigError
from sim.scripted import ScriptedPusher


def rollout(env, policy, episodes: int, seed: int) -> dict:
    """Run episodes; return success rates at both thresholds and the sampled dynamics."""
    s5, s7, dists, mus = [], [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        if hasattr(policy, "reset"):
            policy.reset()
        for _ in range(env.max_episode_steps):
            obs, _, terminated, truncated, info = env.step(policy(obs))
            if terminated or truncated:
                break
        s5.append(info["is_success_0.05"])
        s7.append(info["is_success_0.07"])
        dists.append(info["distance"])
        mus.append(info["mu_raw"])
    return {"s5": np.mean(s5), "s7": np.mean(s7), "dist": np.mean(dists), "mus": np.array(mus)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MetaPusherPush-v0", choices=sim.ENV_IDS)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dynamics", choices=["train", "heldout", "nominal"], default="train")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    warnings.filterwarnings("ignore", module="gymnasium")
    try:
        env = gym.make(
            args.env,
            randomize=args.dynamics != "nominal",
            dynamics_mode="heldout" if args.dynamics == "heldout" else "train",
        ).unwrapped
    except (DynamicsConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    policies = {
        "random": lambda obs: rng.uniform(-env.max_offset, env.max_offset).astype(np.float32),
        "scripted": ScriptedPusher(env),
        "observing": ScriptedPusher(env, knowledge="observing"),
        "contact": ScriptedPusher(env, knowledge="contact"),
    }
    print(
        f"{args.env}: {args.episodes} episodes per policy, dynamics={args.dynamics}, "
        f"{env.dynamics_space.dim} randomized parameters"
    )
    print(f"{'policy':<10} {'success@0.05m':>14} {'success@0.07m':>14} {'final dist (m)':>15}")
    summary = None
    for name, pol in policies.items():
        r = rollout(env, pol, args.episodes, args.seed)
        print(f"{name:<10} {r['s5']:>14.2f} {r['s7']:>14.2f} {r['dist']:>15.3f}")
        summary = r
    mus = summary["mus"]
    print("\nsampled dynamics (min / max over episodes):")
    for i, p in enumerate(env.dynamics_space.params):
        if (
            p.name.split("/")[0]
            in ("link_mass_scale", "joint_damping_scale", "controller_gain_scale")
            and not p.name.endswith(env.joint_names[0])
            and not p.name.endswith(env.robot.dynamic_links[0])
        ):
            continue
        print(f"  {p.name:<40} {mus[:, i].min():9.4f} {mus[:, i].max():9.4f}  {p.units}")
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
