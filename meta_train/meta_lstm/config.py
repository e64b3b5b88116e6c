"""The Meta-LSTM's configuration. Presets live in ``presets/`` beside this file, one per task
(``meta-train meta-lstm <task>`` uses the task's own unless ``--preset`` names another)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meta_train.common.config import ConfigError
from meta_train.common.config import option as _f
from meta_train.common.meta_learning import MetaRunConfig

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@dataclass
class MetaLSTMConfig(MetaRunConfig):
    """The Meta-LSTM learned optimiser (Ravi & Larochelle 2017)."""

    lstm_hidden: int = _f(20, "hidden size of the coordinate-wise first LSTM layer")
    updates: int = _f(5, "learner updates T in meta-training (the query loss is taken after "
                      "the last)")
    eval_steps: int = _f(5, "learner updates at test (the headline; the sinusoid and few-shot "
                         "curves score every update up to their own maximum too)")
    forget_bias: list = _f([4.0, 6.0], "range of the forget gate's initial bias (high: f ~ 1)")
    input_bias: list = _f([-5.0, -4.0], "range of the input gate's initial bias (low: a small "
                          "first step, i ~ 0.01)")
    learn_init: bool = _f(True, "meta-learn the learner's initial parameters c_0")

    def validate(self) -> None:
        self.validate_run()
        if self.lstm_hidden < 1 or self.updates < 1 or self.eval_steps < 0:
            raise ConfigError("lstm_hidden and updates must be >= 1, eval_steps >= 0")
        for name in ("forget_bias", "input_bias"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ConfigError(f"{name} must be [low, high]")

    @property
    def method_name(self) -> str:
        return "meta-lstm"
