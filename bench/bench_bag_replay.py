"""Replay throughput of the bag tools with the shipped models, on a real recording.

Records the closed-loop demo (the PyBullet arm, the shipped policy and estimator, real DDS
processes; ``meta-demo --record``) into a rosbag2 bag, or takes a bag given with ``--bag``, then
measures messages/s for (1) reading and decoding alone and (2) the full ``meta-bag-eval``
evaluation with the shipped models (read + replay + JSON/Markdown reports, no plots).

    .venv/bin/python bench/bench_bag_replay.py --episodes 200 [--storage mcap] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meta_control import bag_eval
from meta_control.bags import BagReader
from meta_control.paths import default_model


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def record(bag: Path, episodes: int, storage: str, seed: int) -> float:
    """Record ``episodes`` demo episodes into ``bag``; returns the wall time (s)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "meta_control.demo", "--episodes", str(episodes),
                          "--seed", str(seed), "--record", str(bag), "--record-storage", storage],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"bench_bag_replay: the demo failed:\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bag", help="evaluate this bag instead of recording one")
    p.add_argument("--episodes", type=int, default=200, help="demo episodes to record")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    p.add_argument("--robot", default="pusher")
    p.add_argument("--json", help="also write the measurements to this JSON file")
    args = p.parse_args()
    policy, est = default_model(args.robot, "policy"), default_model(args.robot, "estimator")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        bag, t_record = Path(args.bag) if args.bag else d / "bag", None
        if not args.bag:
            t_record = record(bag, args.episodes, args.storage, args.seed)
            print(f"recorded {args.episodes} demo episodes in {t_record:.1f} s")
        t0 = time.perf_counter()
        n = sum(1 for _ in BagReader(bag))
        t_read = time.perf_counter() - t0
        print(f"bag: {n} messages; read+decode: {n / t_read:,.0f} msg/s ({t_read:.2f} s)")
        t0 = time.perf_counter()
        rc = bag_eval.main([str(bag), "--policy", str(policy), "--estimator", str(est),
                            "--out", str(d / "out"), "--format", "json,md", "--no-progress"])
        t_eval = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"bench_bag_replay: meta-bag-eval exited {rc}")
        report = json.loads((d / "out" / "report.json").read_text())
        print(f"full evaluation: {n / t_eval:,.0f} msg/s ({t_eval:.2f} s, "
              f"{report['n_ticks'] / t_eval:,.0f} ticks/s)")
    if args.json:
        out = {"command": " ".join(sys.argv), "machine": platform.node(), "messages": n,
               "ticks": report["n_ticks"], "episodes": args.episodes if not args.bag else None,
               "storage": args.storage, "record_s": t_record, "read_s": t_read,
               "eval_s": t_eval, "read_msgs_per_s": n / t_read, "eval_msgs_per_s": n / t_eval,
               "policy_sha256": _sha(policy), "estimator_sha256": _sha(est)}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
