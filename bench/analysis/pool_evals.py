"""Pool ``meta-train evaluate --json`` results of one policy evaluated in chunks (disjoint reset
seeds) into one table with Wilson intervals.

    .venv/bin/python bench/analysis/pool_evals.py docs/device/eval_2026-11-30/U*.json

Files are grouped by name with a trailing ``_s<reset seed>`` taken off (the names
bench/gpu_workstation.sh's ``eval`` stage writes: ``RUN_WHICH_DYNAMICS_sSEED.json``), and within a
group each dynamics setting's successes and episodes are summed over the files. A group whose
chunks share a reset seed is refused: they would count the same episodes twice.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from meta_train.common.evaluation import wilson_interval

_CHUNK = re.compile(r"^(?P<group>.+)_s(?P<seed>\d+)$")


def pool(files: list[Path]) -> dict[tuple[str, str], dict]:
    """(group, dynamics) -> pooled successes, episodes and the chunks' reset seeds."""
    out: dict[tuple[str, str], dict] = {}
    for f in files:
        m = _CHUNK.match(f.stem)
        group, seed = (m["group"], int(m["seed"])) if m else (f.stem, None)
        data = json.loads(f.read_text())
        for dyn, r in data.items():
            n = int(r["episodes"])
            if n < 1:
                raise ValueError(f"{f}: {dyn} has {n} episodes")
            acc = out.setdefault((group, dyn), {"n": 0, "0.05": 0, "0.07": 0, "seeds": []})
            if seed is not None and seed in acc["seeds"]:
                raise ValueError(f"{f}: reset seed {seed} counted twice in {group}")
            acc["seeds"].append(seed)
            acc["n"] += n
            for k in ("0.05", "0.07"):
                acc[k] += round(float(r[f"success_{k}"]) * n)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the pooled table; exit 2 on a missing or malformed file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path, help="evaluate --json outputs")
    args = p.parse_args(argv)
    try:
        pooled = pool(args.files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        print(f"error: not readable evaluation results ({e})", file=sys.stderr)
        return 2
    print("| policy | dynamics | episodes | @0.05 m [95% CI] | @0.07 m [95% CI] |")
    print("|---|---|---:|---|---|")
    for (group, dyn), acc in sorted(pooled.items()):
        cells = []
        for k in ("0.05", "0.07"):
            lo, hi = wilson_interval(acc[k], acc["n"])
            cells.append(f"{acc[k] / acc['n']:.3f} [{lo:.2f}, {hi:.2f}] ({acc[k]})")
        print(f"| {group} | {dyn} | {acc['n']} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
