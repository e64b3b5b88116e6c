"""Copy training runs without their replay buffers, for evaluating them on another machine
(bench/device_check.sh's ``eval`` stage; the lent GPU machine takes 64 MiB in all, one run's
checkpoints are about 80 MB each).

    python bench/stage_runs.py runs/U2E0 runs/U4E2 --out runs/_stage

Each staged run keeps its ``config.yaml``, ``progress.csv``, ``best/`` and ``final/`` as they
are, and its latest checkpoint re-written (verified on load, then saved atomically with new
checksums) with only the actors' weights and the state: what ``meta-train evaluate --which
latest`` and ``--which latest-online`` read. Nothing is written into the source runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meta_train.checkpoint import (  # noqa: E402
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

KEEP_GROUPS = ("actor", "actor_ema")


def stage(run: Path, out_root: Path) -> Path:
    """Write the slim copy of ``run`` under ``out_root`` and return its path."""
    if not (run / "config.yaml").is_file():
        raise CheckpointError(f"{run}: not a training run (no config.yaml)")
    dest = out_root / run.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("config.yaml", "progress.csv"):
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)
    for name in ("best", "final"):
        if (run / name).is_dir():
            shutil.copytree(run / name, dest / name)
    ckpt = latest_checkpoint(run)
    if ckpt is not None:
        torch_groups, _, state = load_checkpoint(ckpt)
        kept = {k: v for k, v in torch_groups.items() if k in KEEP_GROUPS}
        save_checkpoint(dest / "checkpoints" / ckpt.name, kept, {}, state)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        for run in args.runs:
            print(stage(run, args.out))
    except (CheckpointError, OSError) as e:
        print(f"stage_runs: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
