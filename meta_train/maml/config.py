"""MAML's configuration. Presets live in ``presets/`` beside this file, one per task
(``meta-train maml <task>`` uses the task's own unless ``--preset`` names another)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meta_train.common.config import ConfigError
from meta_train.common.config import option as _f
from meta_train.common.meta_learning import MetaRunConfig

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@dataclass
class MAMLConfig(MetaRunConfig):
    """MAML (Finn et al. 2017), first-order MAML and Meta-SGD step sizes."""

    inner_lr: float = _f(0.01, "inner step size alpha (Meta-SGD: every step size's start)")
    inner_steps: int = _f(1, "inner gradient steps in meta-training")
    eval_steps: int = _f(10, "inner gradient steps at test (the headline; the sinusoid and "
                         "few-shot curves score every step up to their own maximum too)")
    first_order: bool = _f(False, "first-order MAML: inner gradients are constants (no second "
                           "derivatives)")
    meta_sgd: bool = _f(False, "learn one inner step size per parameter (Meta-SGD)")

    def validate(self) -> None:
        self.validate_run()
        if not self.inner_lr > 0 or self.inner_steps < 1 or self.eval_steps < 0:
            raise ConfigError("inner_lr must be > 0, inner_steps >= 1 and eval_steps >= 0")

    @property
    def method_name(self) -> str:
        """``maml``, ``fomaml``, ``meta-sgd`` or ``fo-meta-sgd``."""
        base = "meta-sgd" if self.meta_sgd else "maml"
        return ("fo-" + base if self.meta_sgd else "fomaml") if self.first_order else base
