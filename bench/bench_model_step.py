"""Step cost of the shipped models as the nodes run them: ``PolicyRuntime.step`` and
``EstimatorRuntime.step`` (input checks, ONNX Runtime with one thread, the recurrent state, the
estimator's OOD score), on the inputs of real episodes.

    .venv/bin/python bench/bench_model_step.py --episodes 40 --json docs/runs/model_step.json

The inputs are recorded first from the shipped policy's own episodes in the sim (100 steps
each, the estimator's training length), keeping only episodes whose every input both models
accept (an episode that pushes the puck beyond the estimator's training range is refused by its
input checks, as on the robot, and replaced by the next seed; the count is reported), so every
timed step runs inference; then
each model is stepped over them, episode by episode (a reset at each start), and every step is
timed. Prints p50, p99 and max in microseconds with the models' sha256.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from meta_control.paths import default_model
from meta_control.runtime import EstimatorRuntime, InputRejected, PolicyRuntime


def accepted(estimator: EstimatorRuntime, rows: list) -> bool:
    """Whether the estimator accepts every input of one recorded episode."""
    estimator.reset()
    try:
        for obs, _, prev in rows:
            estimator.step(obs, prev)
    except InputRejected:
        return False
    return True


def record(policy: PolicyRuntime, estimator: EstimatorRuntime, episodes: int, seed: int,
           steps: int) -> tuple[list, int]:
    """Observations, goals and previous actions of ``episodes`` of the policy's own episodes
    that both models accept; and how many episodes were skipped."""
    from sim.envs import PushEnv

    robot = "panda" if policy.metadata.env_id.startswith("MetaPanda") else "pusher"
    env = PushEnv(robot, episode_steps=steps)
    out, skipped, ep = [], 0, 0
    while len(out) < episodes:
        obs, _ = env.reset(seed=seed + ep)
        ep += 1
        policy.reset()
        prev = np.zeros(env.n_joints)
        rows = []
        try:
            for _ in range(steps):
                rows.append((obs["observation"].astype(np.float64), obs["desired_goal"].astype(
                    np.float64), prev))
                prev = policy.step(obs["observation"], obs["desired_goal"])
                obs, *_ = env.step(prev)
        except InputRejected:
            skipped += 1
            continue
        if accepted(estimator, rows):
            out.append(rows)
        else:
            skipped += 1
    env.close()
    return out, skipped


def timed(step, reset, episodes) -> np.ndarray:
    """Microseconds of every step (garbage collection off while timing)."""
    samples = []
    gc.collect()
    gc.disable()
    try:
        for rows in episodes:
            reset()
            for row in rows:
                t0 = time.perf_counter_ns()
                step(row)
                samples.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    return np.asarray(samples) / 1e3


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--robot", default="pusher")
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=50_000)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    paths = {kind: default_model(args.robot, kind) for kind in ("policy", "estimator")}
    policy, estimator = PolicyRuntime(paths["policy"]), EstimatorRuntime(paths["estimator"])
    episodes, skipped = record(policy, estimator, args.episodes, args.seed, args.steps)
    results = {
        "policy": timed(lambda r: policy.step(r[0], r[1]), policy.reset, episodes),
        "estimator": timed(lambda r: estimator.step(r[0], r[2]), estimator.reset, episodes),
    }
    print(f"{args.episodes} episodes x {args.steps} steps ({skipped} refused episodes skipped), "
          f"one thread, {platform.node()}")
    print(f"{'model':<12}{'p50 us':>10}{'p99 us':>10}{'max us':>10}  sha256")
    out = {"command": "python bench/bench_model_step.py " + " ".join(sys.argv[1:]),
           "machine": platform.node(), "episodes": args.episodes, "steps": args.steps,
           "skipped_episodes": skipped}
    for kind, us in results.items():
        p50, p99 = np.percentile(us, [50, 99])
        sha = hashlib.sha256(Path(paths[kind]).read_bytes()).hexdigest()
        print(f"{kind:<12}{p50:10.1f}{p99:10.1f}{us.max():10.1f}  {sha[:12]}")
        out[kind] = {"model": str(paths[kind]), "sha256": sha, "n": int(len(us)),
                     "p50_us": float(p50), "p99_us": float(p99), "max_us": float(us.max())}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
