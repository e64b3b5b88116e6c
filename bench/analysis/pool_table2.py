"""Pool several ``meta-train table2`` results (seeds) into one table with Wilson intervals.

    .venv/bin/python bench/analysis/pool_table2.py docs/runs/table2_150k_s1_labels_a.json \
        docs/runs/table2_150k_s1_labels_b.json docs/runs/table2_150k_s2_labels.json \
        docs/runs/table2_150k_s3_labels_a.json docs/runs/table2_150k_s3_labels_b.json

Each variant's successes and episodes are summed over the files (one file per seed, or a
seed's variants split over several files) and its success rate at 0.05 m and 0.07 m printed
with the 95% Wilson interval of the pooled episodes, per seed values beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meta_train.common.evaluation import wilson_interval
from meta_train.rdpg.table2 import LABELS


def main(argv: list[str] | None = None) -> int:
    """Print the pooled table; exit 2 on a missing or malformed file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", help="table2 JSON outputs")
    args = p.parse_args(argv)
    pooled: dict[tuple[str, str, str], list[int]] = {}
    per_seed: dict[tuple[str, str], list[str]] = {}
    for f in args.files:
        try:
            data = json.loads(Path(f).read_text())
            seed = data["config"]["seed"]
            for variant, r in data["results"].items():
                for dyn in ("train", "heldout"):
                    n = int(r[dyn]["episodes"])
                    for k in ("0.05", "0.07"):
                        s = round(r[dyn][f"success_{k}"] * n)
                        acc = pooled.setdefault((variant, dyn, k), [0, 0])
                        acc[0] += s
                        acc[1] += n
                    per_seed.setdefault((variant, dyn), []).append(
                        f"{r[dyn]['success_0.05']:.2f} (seed {seed})")
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"error: {f}: not a readable table2 result ({e})", file=sys.stderr)
            return 2
    print("| model | dynamics | episodes | @0.05 m [95% CI] | @0.07 m [95% CI] "
          "| per seed @0.05 m |")
    print("|---|---|---:|---|---|---|")
    for variant in LABELS:
        for dyn in ("train", "heldout"):
            if (variant, dyn, "0.05") not in pooled:
                continue
            cells = []
            for k in ("0.05", "0.07"):
                s, n = pooled[(variant, dyn, k)]
                lo, hi = wilson_interval(s, n)
                cells.append(f"{s / n:.2f} [{lo:.2f}, {hi:.2f}]")
            n = pooled[(variant, dyn, "0.05")][1]
            print(f"| {LABELS[variant]} | {dyn} | {n} | {cells[0]} | {cells[1]} | "
                  f"{', '.join(per_seed[(variant, dyn)])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
