"""A search's configuration: what is searched (objective, space, budgets) and how (sampler,
storage, workers). Presets in ``presets/`` beside this file (``meta-train nas --preset``).

The fields in :data:`STUDY_FIELDS` define a study: they are stored in it (user attribute
``nas.config``) when it is created, a worker that joins it takes them from there, and one
that gives other values is refused. The others belong to each worker's run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meta_train.common.config import ConfigError, load_preset
from meta_train.common.config import option as _f
from meta_train.nas.sampler import SAMPLERS

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRUNERS = ("none", "median", "hyperband")
DEFAULT_STORAGE = "sqlite:///runs/nas/nas.db"

STUDY_FIELDS = ("objective", "base_preset", "base", "budget", "space", "sampler", "seed",
                "batch_size", "controller_lr", "baseline_decay", "pruner")


@dataclass
class NASConfig:
    """Architecture and hyperparameter search on Optuna (Zoph & Le's controller, TPE, random)."""

    objective: str = _f("", "what each trial trains and scores (meta-train nas --list shows "
                        "the registered objectives: estimator, rdpg, dynamics_model, synthetic)")
    base_preset: str = _f("", "the trainer's preset the search starts from (name or path; "
                          "empty: its defaults); the best config is this preset with the "
                          "decisions found")
    base: dict = _f({}, "fixed config values over the base preset, in trials and in the best "
                    "config")
    budget: dict = _f({}, "config values of the short, fixed trial budget (fewer episodes, "
                      "epochs or steps); left out of the best config")
    space: dict = _f({}, "the search space: decisions (flat) and/or layers (see "
                     "meta_train/nas/space.py)")
    sampler: str = _f("controller", f"one of {', '.join(SAMPLERS)}")
    seed: int = _f(0, "seed of the sampler (each trial's draw is seeded by it and the trial "
                   "number); the trainers keep their own seed")
    batch_size: int = _f(5, "controller: trials per REINFORCE step (m)")
    controller_lr: float = _f(6e-4, "controller: Adam learning rate (Zoph & Le: 6e-4)")
    baseline_decay: float = _f(0.95, "controller: decay of the moving-average baseline")
    pruner: str = _f("median", f"one of {', '.join(PRUNERS)}; prunes trials of objectives "
                     "that report intermediate values (dynamics_model, rdpg, synthetic with "
                     "steps)")
    n_trials: int = _f(40, "the study's finished trials (complete or pruned) over all workers "
                       "and resumes; a worker stops once the study has them")
    timeout: float = _f(0.0, "each worker stops starting trials after this many seconds "
                        "(0: no limit)")
    storage: str = _f(DEFAULT_STORAGE, "Optuna RDB storage URL: sqlite:///path.db (one "
                      "machine) or postgresql://user:pass@host/db (many)")
    study_name: str = _f("", "the study (default: <preset>__<sampler>__<seed>); a study that "
                         "exists is resumed")
    workers: int = _f(1, "worker processes on this machine sharing the study (more machines: "
                      "start the same command there)")
    heartbeat_s: int = _f(60, "seconds between a running trial's heartbeats; a trial silent for "
                          "grace_s ends FAIL and is retried once")
    grace_s: int = _f(180, "seconds without a heartbeat after which a trial counts as lost")
    enqueue: list = _f([], "decision values (mappings) to evaluate first, e.g. the hand-designed "
                       "architecture")
    out: str = _f("", "where the best config is written (default runs/nas/<study>/best.yaml)")
    torch_threads: int = _f(1, "CPU threads for torch in each worker")
    progress: bool = _f(True, "print one line per finished trial")

    def validate(self) -> None:
        """Raise :class:`ConfigError` on inconsistent values."""
        if not self.objective:
            raise ConfigError("objective is required (a preset sets it, or --objective)")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"pruner must be one of {PRUNERS}, got {self.pruner!r}")
        for name in ("batch_size", "workers", "heartbeat_s", "grace_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_trials < 0 or self.timeout < 0 or self.torch_threads < 0:
            raise ConfigError("n_trials, timeout and torch_threads must be >= 0")
        if self.grace_s <= self.heartbeat_s:
            raise ConfigError(f"grace_s ({self.grace_s}) must exceed heartbeat_s "
                              f"({self.heartbeat_s})")
        if not self.controller_lr > 0 or not 0.0 <= self.baseline_decay < 1.0:
            raise ConfigError("controller_lr must be > 0 and baseline_decay in [0, 1)")
        if not self.space:
            raise ConfigError("space is empty: give decisions and/or layers")
        if not all(isinstance(e, dict) for e in self.enqueue):
            raise ConfigError("enqueue must be a list of mappings of decision values")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def study_values(self) -> dict[str, Any]:
        """The fields that define the study."""
        return {k: getattr(self, k) for k in STUDY_FIELDS}


def preset_values(name_or_path: str) -> dict[str, Any]:
    """Values of a NAS preset: a name under ``presets/`` or a path."""
    return load_preset(name_or_path, PRESETS_DIR)
