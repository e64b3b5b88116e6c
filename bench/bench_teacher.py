"""The push task's teachers side by side: success and cost per label, on the same tasks.

    .venv/bin/python bench/bench_teacher.py --env MetaPandaPush-v0 --episodes 300 --jobs 2 \
        --teachers planning privileged observing contact --dynamics train heldout nominal \
        --json docs/runs/teachers_panda.json

Each teacher drives the arm itself over ``--episodes`` tasks per dynamics mode (reset seeds
``--seed`` + i, the same tasks for every teacher), and success at 0.05 m is read at the last
step (95% Wilson intervals). ``--label-episodes`` more episodes per teacher are driven by a
noisy copy of the teacher (its action plus uniform noise of ``--label-noise`` of the action
bound, a stand-in for a student early in training) while the teacher labels every visited state,
as DAgger asks of it. The cost of a label is the CPU time of one teacher call (process time:
one core; PyBullet runs on the calling thread), reported as mean and 99th percentile, separately
for the two uses. ``--jobs`` splits the episodes over processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np

import sim  # noqa: F401  (registers the envs)
from meta_train.common.evaluation import wilson_interval
from sim.planner import TEACHERS, make_teacher


def run_chunk(job: dict[str, Any]) -> dict[str, Any]:
    """Episodes ``job["seeds"]`` of one teacher in one dynamics mode; label times in seconds."""
    kwargs: dict[str, Any] = {}
    if job["dynamics"] == "nominal":
        kwargs["randomize"] = False
    else:
        kwargs["dynamics_mode"] = job["dynamics"]
    env = gym.make(job["env"], **kwargs).unwrapped
    teacher = make_teacher(env, job["teacher"], job["prior_friction"])
    rng = np.random.default_rng(job["seeds"][0] if job["seeds"] else 0)
    bound = np.asarray(env.action_space.high, dtype=np.float64)
    success, label_s = [], []
    for seed in job["seeds"]:
        obs, _ = env.reset(seed=seed)
        teacher.reset()
        info: dict[str, Any] = {}
        for _ in range(env.max_episode_steps):
            t0 = time.process_time()
            action = np.asarray(teacher(obs), dtype=np.float64)
            label_s.append(time.process_time() - t0)
            if job["noise"] > 0.0:
                action = action + rng.uniform(-1.0, 1.0, action.shape) * job["noise"] * bound
            obs, _, _, _, info = env.step(np.clip(action, -bound, bound).astype(np.float32))
        success.append(bool(info["is_success_0.05"]))
    env.close()
    return {**{k: job[k] for k in ("teacher", "dynamics", "noise")}, "success": success,
            "label_s": label_s}


def summary(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Success with its interval and label cost of the chunks of one cell."""
    success = [s for c in chunks for s in c["success"]]
    label_s = np.array([x for c in chunks for x in c["label_s"]])
    k, n = int(sum(success)), len(success)
    return {"success": k / n if n else float("nan"), "ci95": list(wilson_interval(k, n)),
            "n": n, "label_s_mean": float(label_s.mean()),
            "label_s_p99": float(np.percentile(label_s, 99)), "labels": int(label_s.size)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="MetaPandaPush-v0")
    p.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=TEACHERS)
    p.add_argument("--dynamics", nargs="+", default=["train"],
                   choices=["train", "heldout", "nominal"])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--label-episodes", type=int, default=0,
                   help="episodes per teacher driven by its noisy copy (train dynamics)")
    p.add_argument("--label-noise", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=20_000)
    p.add_argument("--prior-friction", type=float, default=0.3)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args(argv)
    if args.episodes < 1 or args.jobs < 1 or args.label_episodes < 0:
        print("error: --episodes and --jobs must be >= 1, --label-episodes >= 0",
              file=sys.stderr)
        return 2
    cells = [(t, d, 0.0, args.episodes) for t in args.teachers for d in args.dynamics]
    if args.label_episodes:
        cells += [(t, "train", args.label_noise, args.label_episodes) for t in args.teachers]
    jobs = []
    for teacher, dynamics, noise, n in cells:
        seeds = list(range(args.seed, args.seed + n))
        for part in np.array_split(np.asarray(seeds), args.jobs):
            jobs.append({"env": args.env, "teacher": teacher, "dynamics": dynamics,
                         "noise": noise, "seeds": [int(s) for s in part],
                         "prior_friction": args.prior_friction})
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        chunks = list(pool.map(run_chunk, jobs))
    wall = time.perf_counter() - t0
    results = []
    for teacher, dynamics, noise, _ in cells:
        mine = [c for c in chunks if (c["teacher"], c["dynamics"], c["noise"])
                == (teacher, dynamics, noise)]
        row = {"teacher": teacher, "dynamics": dynamics,
               "driver": "teacher" if noise == 0.0 else f"teacher + noise {noise}",
               **summary(mine)}
        results.append(row)
        print(f"{teacher:<10} {dynamics:<8} {row['driver']:<22} {row['success']:.3f} "
              f"[{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}] n={row['n']}  label "
              f"{1e3 * row['label_s_mean']:.2f} ms mean, {1e3 * row['label_s_p99']:.1f} ms p99")
    if args.json:
        out = {"command": "python bench/bench_teacher.py " + " ".join(argv or sys.argv[1:]),
               "results": results, "wall_s": round(wall, 1),
               "machine": {"cpu": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()}}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
