"""Training-loop speed with the collector inline and in a process of its own, back to back.

    .venv/bin/python bench/pipeline_speedup.py --preset pusher --seconds 150 \
        --json docs/runs/pipeline_speedup_pusher.json

Runs the real CLI (``meta-train rdpg-her --preset P --collector inline|process``) for
``--seconds`` of training wall time each, one after the other on an otherwise idle machine,
and compares the wall time each took over the same window of iterations (from
``--from-iteration``, past the warm-up and the initial demonstrations, to the last iteration
both logged): the same episodes and updates, so the ratio is the loop's speed-up. Extra
``meta-train`` flags go after ``--``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("inline", "process")


def _rows(path: Path) -> dict[int, dict]:
    with open(path, newline="") as f:
        return {int(r["iteration"]): r for r in csv.DictReader(f)}


def speedup(progress: dict[str, Path], from_iteration: int) -> dict:
    """Wall time and env steps per mode over the common window of logged iterations, and
    the ratio of their env steps per second (process over inline)."""
    rows = {m: _rows(p) for m, p in progress.items()}
    common = sorted(set.intersection(*(set(r) for r in rows.values())))
    start = [i for i in common if i >= from_iteration]
    if len(start) < 2:
        raise ValueError(f"fewer than two iterations from {from_iteration} logged by both runs "
                         f"(common: {common[:3]}...{common[-3:]}); run longer")
    a, b = start[0], start[-1]
    out: dict = {"window_iterations": [a, b]}
    for m, r in rows.items():
        wall = float(r[b]["wall_s"]) - float(r[a]["wall_s"])
        steps = int(r[b]["env_steps"]) - int(r[a]["env_steps"])
        out[m] = {"wall_s": round(wall, 1), "env_steps": steps,
                  "env_steps_per_s": round(steps / wall, 1),
                  "updates": int(r[b]["updates"]) - int(r[a]["updates"])}
    out["speedup"] = round(out["process"]["env_steps_per_s"] / out["inline"]["env_steps_per_s"],
                           3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="pusher")
    p.add_argument("--seconds", type=float, default=150.0)
    p.add_argument("--from-iteration", type=int, default=100)
    p.add_argument("--json", help="write the result here")
    p.add_argument("extra", nargs="*", help="more meta-train flags, after --")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        progress = {}
        for mode in MODES:
            cmd = [sys.executable, "-m", "meta_train.cli", "rdpg-her", "--preset", args.preset,
                   "--collector", mode, "--max-wall-s", str(args.seconds),
                   "--final-eval-episodes", "0", "--run-dir", tmp, "--run-name", mode,
                   "--no-progress", *args.extra]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"error: {' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-2000:]}",
                      file=sys.stderr)
                return 2
            progress[mode] = Path(tmp) / mode / "progress.csv"
        try:
            result = speedup(progress, args.from_iteration)
        except (OSError, ValueError, KeyError) as e:  # e.g. a run too short to log a row
            print(f"error: {e}", file=sys.stderr)
            return 2
    result["command_flags"] = {"preset": args.preset, "seconds": args.seconds,
                               "extra": args.extra}
    print("| collector | wall s | env steps | env steps/s | updates |")
    print("|---|---:|---:|---:|---:|")
    for m in MODES:
        r = result[m]
        print(f"| {m} | {r['wall_s']} | {r['env_steps']} | {r['env_steps_per_s']} | "
              f"{r['updates']} |")
    a, b = result["window_iterations"]
    print(f"iterations {a}-{b}: process / inline = {result['speedup']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
