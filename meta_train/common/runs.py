"""Run directories: their names and their learning curves.

A run lives in ``<run_dir>/<name>/`` (CleanRL's ``env__algo__...__seed__time`` names) and
logs one row per evaluation to ``progress.csv``, mirrored as TensorBoard scalars in
``tensorboard/`` (``tensorboard --logdir runs``). A resumed run first drops what was logged
after the checkpoint it resumes from, so that the curve has no duplicates.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np


def default_run_name(*parts: object) -> str:
    """``part0__part1__...__<unix time>``, e.g. ``MetaPusherPush-v0__rdpg_her__lstm__0__...``."""
    return "__".join([*(str(p) for p in parts), str(int(time.time()))])


class ProgressLog:
    """``progress.csv`` and its TensorBoard mirror for one run directory.

    Args:
        run_dir: the run's directory.
        tensorboard: also write every row as scalars against ``step_key``, under ``eval/``
            for keys starting with ``eval_`` and ``train/`` for the rest.
        step_key: the row's key used as the TensorBoard step (e.g. ``env_steps``).
        index_key: the row's key :meth:`trim` keeps rows up to (e.g. ``iteration``).
    """

    FILE = "progress.csv"

    def __init__(self, run_dir: Path, tensorboard: bool = True, step_key: str = "env_steps",
                 index_key: str = "iteration") -> None:
        self.path = Path(run_dir) / self.FILE
        self.tb_dir = Path(run_dir) / "tensorboard"
        self.tensorboard, self.step_key, self.index_key = tensorboard, step_key, index_key
        self.rows: list[dict[str, Any]] = []
        self._tb = None  # opened at the first row
        self._purge_step: int | None = None

    def log(self, row: dict[str, Any]) -> None:
        """Append a row (a file that exists keeps its columns: a resumed run may log more or
        fewer keys)."""
        self.rows.append(row)
        fields = list(row)
        if self.path.exists():
            with open(self.path, newline="") as f:
                fields = next(csv.reader(f), None) or fields
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.tensorboard:
            self._tb_write(row)

    def trim(self, last_index: int, last_step: int) -> None:
        """Resume: drop the CSV rows whose ``index_key`` is above ``last_index`` (replaced
        atomically) and purge the TensorBoard scalars after ``last_step`` when it is next
        opened (the resumed run logs those rows again)."""
        self._purge_step = last_step + 1
        if not self.path.is_file():
            return
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, list(reader)
        keep = [r for r in rows if r.get(self.index_key, "").isdigit()
                and int(r[self.index_key]) <= last_index]
        if fields is None or len(keep) == len(rows):
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(keep)
        tmp.replace(self.path)

    def _tb_write(self, row: dict[str, Any]) -> None:
        if self._tb is None:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.tb_dir), purge_step=self._purge_step)
        step = int(row[self.step_key])
        for key, value in row.items():
            if key in (self.index_key, self.step_key) or isinstance(value, bool) or \
                    not isinstance(value, (int, float, np.integer, np.floating)):
                continue
            group = "eval" if key.startswith("eval_") else "train"
            self._tb.add_scalar(f"{group}/{key}", float(value), step)
        self._tb.flush()

    def close(self) -> None:
        """Close the TensorBoard writer (a later row reopens it)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


class RunError(RuntimeError):
    """A run failed for a reason outside its configuration (a worker process died, ...); its
    last complete checkpoint is kept, and ``--resume`` continues from it."""
