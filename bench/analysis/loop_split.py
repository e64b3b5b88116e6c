"""Where a training iteration's time goes: collecting episodes, scripted demonstrations and
gradient updates, for a preset as configured (one torch thread, as the trainer runs).

    taskset -c 0 .venv/bin/python bench/analysis/loop_split.py --preset pusher

Builds the real trainer, collects warm-up episodes, then times ``collect()`` (``n_envs``
episodes with the teacher's labels), ``collect_demo()`` and ``update()``, and prints the time
per iteration for several values of ``updates_per_iteration``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from meta_train.common.config import ConfigError, build_config
from meta_train.rdpg.config import RDPGConfig, preset_values
from meta_train.rdpg.trainer import RDPGTrainer


def _per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="pusher")
    p.add_argument("--collects", type=int, default=30)
    p.add_argument("--demos", type=int, default=10)
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--upi", type=int, nargs="+", default=[16, 8, 4, 2],
                   help="updates per iteration to print the iteration time for")
    args = p.parse_args(argv)
    try:
        values = preset_values(args.preset)
        with tempfile.TemporaryDirectory() as tmp:
            values.update(run_dir=tmp, run_name="split", progress=False, tensorboard=False,
                          demo_episodes=0)
            cfg = build_config(RDPGConfig, values)
            tr = RDPGTrainer(cfg)
            for _ in range(20):  # enough episodes for a batch
                tr.collect()
            collect = _per_call(tr.collect, args.collects)
            demo = _per_call(tr.collect_demo, args.demos) if tr.demo_env is not None else 0.0
            tr.update()
            update = _per_call(tr.update, args.updates)
            tr.close()
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    steps = cfg.n_envs * tr.horizon
    print(f"{args.preset}: collect ({cfg.n_envs} episodes, {steps} steps) {collect * 1e3:.1f} ms, "
          f"demonstration episode {demo * 1e3:.1f} ms, update ({cfg.batch_episodes} episodes) "
          f"{update * 1e3:.1f} ms")
    print("| updates per iteration | ms per iteration | updates' share | collected env steps/s |")
    print("|---:|---:|---:|---:|")
    for upi in args.upi:
        it = collect + cfg.demo_fraction * demo + upi * update
        print(f"| {upi} | {it * 1e3:.0f} | {upi * update / it:.0%} | {steps / it:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
