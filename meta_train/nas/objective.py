"""The objectives this package offers searches (``meta_train.common.objectives``): the
synthetic benchmark and the MAML study's dynamics model. The estimator and the recurrent
policy register theirs from their own packages."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from meta_train.common.config import ConfigError, load_preset
from meta_train.common.objectives import TrainableObjective, register
from meta_train.nas import dynamics_model, synthetic


def _values_file(preset: str) -> dict[str, Any]:
    """A YAML file of config values (these objectives have no named presets)."""
    if not preset:
        return {}
    if not Path(preset).suffix:
        raise ConfigError(f"base_preset {preset!r}: this objective has no named presets; give "
                          f"the path of a YAML file of its config values")
    return load_preset(preset, Path("."))


SYNTHETIC = register(TrainableObjective(
    name="synthetic",
    description="a planted target string of the search space; known optimum 1 (instant)",
    direction="maximize",
    metric="synthetic score (1 at the planted optimum)",
    fields=None,
    base_values=_values_file,
    check=synthetic.check,
    evaluate=synthetic.evaluate,
    takes_search_space=True,
))

DYNAMICS_MODEL = register(TrainableObjective(
    name="dynamics_model",
    description="the MAML study's forward model (meta_train.common.forward_model) on the "
                "shipped policy's rollouts",
    direction="minimize",
    metric="validation MSE of the normalised observation change, before adaptation",
    fields=tuple(f.name for f in dataclasses.fields(dynamics_model.DynamicsModelConfig)),
    base_values=_values_file,
    check=dynamics_model.check,
    evaluate=dynamics_model.evaluate,
    prepare=dynamics_model.prepare,
))
