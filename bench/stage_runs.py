"""Copy training runs without their replay buffers, for evaluating them on another machine
(bench/device_check.sh's ``eval`` stage; the lent GPU machine takes 64 MiB in all, one run's
checkpoints are about 80 MB each).

    .venv/bin/python bench/stage_runs.py runs/U2E0 runs/U4E2 --out runs/_stage --train-chunks 5

Each staged run keeps its ``config.yaml``, ``progress.csv``, ``best/`` and ``final/`` as they
are, and its latest checkpoint re-written (verified on load, then saved atomically with new
checksums) with only the actors' weights and the state: what ``meta-train evaluate --which
latest`` and ``--which latest-online`` read. Nothing is written into the source runs.

It also writes ``OUT/jobs.txt``, the eval stage's job list: each run's final actor, and its
online actor where the run keeps an average (``--actor-ema``; elsewhere the two are the same
weights), on ``--train-chunks`` chunks (default 1) of training-range tasks (reset seeds
10000, 10000 + E, ... for chunks of E episodes, the eval stage's EVAL_EPISODES) and one chunk
each of held-out and nominal tasks (reset seed 10000).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from meta_train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

KEEP_GROUPS = ("actor", "actor_ema")


def stage(run: Path, out_root: Path) -> tuple[Path, bool]:
    """Write the slim copy of ``run`` under ``out_root``; return its path and whether its
    latest checkpoint keeps a moving average of the actor."""
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
    averaged = False
    if ckpt is not None:
        torch_groups, _, state = load_checkpoint(ckpt)
        kept = {k: v for k, v in torch_groups.items() if k in KEEP_GROUPS}
        save_checkpoint(dest / "checkpoints" / ckpt.name, kept, {}, state)
        averaged = "actor_ema" in kept
    return dest, averaged


def eval_jobs(staged: list[tuple[Path, bool]], train_chunks: int, chunk_episodes: int,
              first_seed: int = 10_000) -> list[str]:
    """The eval stage's 'RUN_DIR WHICH DYNAMICS RESET_SEED' lines (see the module doc)."""
    lines = []
    for dest, averaged in staged:
        for which in ("final", "latest-online") if averaged else ("final",):
            lines += [f"{dest} {which} train {first_seed + i * chunk_episodes}"
                      for i in range(train_chunks)]
            lines += [f"{dest} {which} {dyn} {first_seed}" for dyn in ("heldout", "nominal")]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train-chunks", type=int, default=1,
                   help="chunks of training-range tasks per actor in OUT/jobs.txt")
    p.add_argument("--chunk-episodes", type=int, default=200,
                   help="episodes per chunk (the eval stage's EVAL_EPISODES)")
    args = p.parse_args(argv)
    if args.train_chunks < 1 or args.chunk_episodes < 1:
        p.error("--train-chunks and --chunk-episodes must be >= 1")
    try:
        staged = [stage(run, args.out) for run in args.runs]
        for dest, _ in staged:
            print(dest)
        jobs = eval_jobs(staged, args.train_chunks, args.chunk_episodes)
        (args.out / "jobs.txt").write_text("\n".join(jobs) + "\n")
        print(f"{args.out / 'jobs.txt'}: {len(jobs)} jobs")
    except (CheckpointError, OSError) as e:
        print(f"stage_runs: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
