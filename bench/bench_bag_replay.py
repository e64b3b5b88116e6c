"""Replay throughput of the bag tools on a >=100k-message bag.

Writes a synthetic recorded run (tiny exported policy + estimator, 8 contract topics per tick)
to a temp folder, then measures messages/s for (1) reading and decoding alone and (2) the full
``meta-bag-eval`` evaluation (read + replay + JSON/Markdown reports, no plots).

    .venv/bin/python bench/bench_bag_replay.py [--ticks 13000] [--storage mcap]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "ros2_ws/src/meta_control"), str(ROOT / "tests/ros2"), str(ROOT)]

import bag_helpers as H  # noqa: E402

from meta_control import bag_eval  # noqa: E402
from meta_control.bags import BagReader  # noqa: E402


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticks", type=int, default=13_000, help="control ticks (8 messages each)")
    p.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        policy, est = H.make_models(d / "models")
        episodes = max(1, args.ticks // 100)
        t0 = time.perf_counter()
        run = H.write_run(
            d / "bag",
            policy,
            est,
            storage=args.storage,
            episodes=episodes,
            steps=args.ticks // episodes,
            split_messages=20_000,
        )
        t_write = time.perf_counter() - t0
        n = run["messages"]
        print(
            f"bag: {n} messages, {run['ticks']} ticks, {args.storage}, "
            f"written in {t_write:.1f} s (incl. live policy/estimator)"
        )
        t0 = time.perf_counter()
        count = sum(1 for _ in BagReader(d / "bag"))
        t_read = time.perf_counter() - t0
        assert count == n, (count, n)
        print(f"read+decode: {n / t_read:,.0f} msg/s ({t_read:.2f} s)")
        t0 = time.perf_counter()
        rc = bag_eval.main(
            [
                str(d / "bag"),
                "--policy",
                str(policy),
                "--estimator",
                str(est),
                "--out",
                str(d / "out"),
                "--format",
                "json,md",
                "--no-progress",
            ]
        )
        t_eval = time.perf_counter() - t0
        assert rc == 0
        print(
            f"full evaluation: {n / t_eval:,.0f} msg/s ({t_eval:.2f} s, "
            f"{run['ticks'] / t_eval:,.0f} ticks/s)"
        )


if __name__ == "__main__":
    main()
