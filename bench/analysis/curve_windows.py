"""Compare training runs' learning curves over env-step windows, side by side.

    .venv/bin/python bench/analysis/curve_windows.py docs/runs/pusher_H_420k_progress.csv \
        docs/runs/pusher_O_observing_420k_progress.csv

For each ``progress.csv`` (written by ``meta-train rdpg-her``) and each window
``[start, end)`` of env steps, prints the mean of the periodic evaluations' success at 0.05 m
and the median behaviour-cloning loss of the rows logged in it, then the run's last
``wall_s`` and env steps per second. The periodic evaluations are short (``eval_episodes``
each), so a window's mean is the stable number; one row is noise. ``--plot curve.svg`` also
draws each run's evaluations against env steps, with their mean over every window.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

WINDOWS_K = ((30, 70), (70, 180), (180, 240), (240, 300), (300, 360), (360, 421))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "env_steps" not in rows[0] or "eval_success_0.05" not in rows[0]:
        raise ValueError(f"{path}: not a meta-train progress.csv")
    return rows


def _cell(rows: list[dict[str, str]], lo: float, hi: float) -> str:
    sel = [r for r in rows if lo <= int(r["env_steps"]) < hi]
    ev = [float(r["eval_success_0.05"]) for r in sel if r.get("eval_success_0.05")]
    bc = [float(r["bc_loss"]) for r in sel if r.get("bc_loss")]
    if not ev:
        return "-"
    return f"{statistics.mean(ev):.2f}" + (f" / {statistics.median(bc):.2f}" if bc else "")


def _windows(text: str) -> tuple[tuple[float, float], ...]:
    """``"100-150,150-200"`` -> ((100, 150), (150, 200)) (thousands of env steps)."""
    try:
        out = tuple(tuple(float(x) for x in w.split("-")) for w in text.split(","))
    except ValueError:
        out = ()
    if not out or any(len(w) != 2 or not w[0] < w[1] for w in out):
        raise argparse.ArgumentTypeError(f"expected windows like 100-150,150-200, got {text!r}")
    return out


def plot(runs: dict[str, list[dict[str, str]]], windows, out: Path) -> None:
    """Success at 0.05 m of every periodic evaluation against env steps (dots) and each
    window's mean (steps), one colour per run, written to ``out`` (SVG or PNG by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, rows in runs.items():
        pts = [(int(r["env_steps"]), float(r["eval_success_0.05"])) for r in rows
               if r.get("eval_success_0.05")]
        (line,) = ax.plot([x / 1e3 for x, _ in pts], [y for _, y in pts], ".", alpha=0.3)
        for a, b in windows:
            sel = [y for x, y in pts if a * 1e3 <= x < b * 1e3]
            if sel:
                ax.hlines(statistics.mean(sel), a, b, colors=line.get_color(), lw=2.5,
                          label=name if (a, b) == windows[0] else None)
    ax.set_xlabel("env steps (thousands)")
    ax.set_ylabel("success at 0.05 m")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, metadata={"Date": None} if out.suffix == ".svg" else None)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Print one markdown row per run; exit 2 on a missing or malformed file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path, help="progress.csv files")
    p.add_argument("--windows", type=_windows, default=WINDOWS_K, metavar="A-B,C-D,...",
                   help="env-step windows in thousands (default: the pusher's, "
                        "30-70,70-180,...,360-421)")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="also draw the curves with their window means (.svg or .png)")
    args = p.parse_args(argv)
    windows = args.windows
    heads = [f"{a:g}-{b:g}k" for a, b in windows]
    print("| run | " + " | ".join(heads) + " | env steps | wall s | env steps/s |")
    print("|---|" + "---:|" * (len(heads) + 3))
    runs = {}
    for path in args.files:
        try:
            rows = runs[path.stem] = _rows(path)
            cells = [_cell(rows, a * 1e3, b * 1e3) for a, b in windows]
            last = rows[-1]
            tail = f" | {last['env_steps']} | {last['wall_s']} | {last['env_steps_per_s']} |"
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"curve_windows: {path}: {e}", file=sys.stderr)
            return 2
        print(f"| {path.stem} | " + " | ".join(cells) + tail)
    if args.plot:
        plot(runs, windows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
