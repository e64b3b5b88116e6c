"""The baselines' configuration. Presets live in ``presets/`` beside this file, one per task
(``meta-train baselines <task>`` uses the task's own unless ``--preset`` names another)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meta_train.common.config import ConfigError
from meta_train.common.config import option as _f
from meta_train.common.meta_learning import MetaRunConfig

PRESETS_DIR = Path(__file__).resolve().parent / "presets"

KNOWN = ("no-adaptation", "fine-tune", "ncm", "rebal", "oracle")
DEFAULTS = {"sinusoid": ["no-adaptation", "fine-tune"],
            "fewshot": ["fine-tune", "ncm"],
            "pusher-dynamics": ["no-adaptation", "fine-tune", "rebal", "oracle"]}
"""The baselines each task family has (``--which`` picks among them)."""


@dataclass
class BaselinesConfig(MetaRunConfig):
    """Baselines trained on the same task stream: ``iterations`` batches of ``meta_batch``
    tasks (few-shot: batches of ``pretrain_batch`` images of all training classes)."""

    which: list = _f([], "baselines to train and evaluate (default: all the task has: "
                     "sinusoid no-adaptation, fine-tune; fewshot fine-tune, ncm; "
                     "pusher-dynamics no-adaptation, fine-tune, rebal, oracle)")
    finetune_lrs: list = _f([0.001, 0.003, 0.01, 0.03, 0.1], "fine-tuning step sizes tried "
                            "(the best on the validation tasks is used)")
    finetune_steps: list = _f([1, 5, 10], "fine-tuning step counts tried")
    val_batches: int = _f(8, "batches of val_tasks validation tasks the fine-tuning "
                          "setting is chosen on")
    pretrain_batch: int = _f(256, "fewshot: images per pre-training step (all training "
                             "classes, their global labels)")
    rebal_hidden: int = _f(64, "ReBAL: LSTM width of the history encoder")
    rebal_iterations: int = _f(0, "ReBAL and the oracle: training batches (0: iterations)")

    def validate(self) -> None:
        self.validate_run()
        bad = sorted(set(self.which) - set(KNOWN))
        if bad:
            raise ConfigError(f"unknown baselines {bad} (known: {', '.join(KNOWN)})")
        if not self.finetune_lrs or min(self.finetune_lrs) <= 0 or not self.finetune_steps \
                or min(self.finetune_steps) < 0:
            raise ConfigError("finetune_lrs must be > 0 and finetune_steps >= 0, non-empty")
        if self.val_batches < 1 or self.pretrain_batch < 1 or self.rebal_hidden < 1 \
                or self.rebal_iterations < 0:
            raise ConfigError("val_batches, pretrain_batch, rebal_hidden must be >= 1")

    def baselines(self, task_name: str) -> list[str]:
        """The baselines to run on ``task_name``."""
        have = DEFAULTS[task_name]
        if not self.which:
            return list(have)
        missing = [w for w in self.which if w not in have]
        if missing:
            raise ConfigError(f"{task_name} has no baseline {missing} (it has {have})")
        return list(self.which)
