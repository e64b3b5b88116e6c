"""Trainable objectives: trainers that a search can run on a short budget and score.

A search (``meta_train.nas``) must train the estimator, the recurrent policy or a dynamics model
without importing the methods that own them. So a method offers its trainer here: a module
``meta_train.<method>.objective`` calls :func:`register` with a :class:`TrainableObjective`,
and :func:`get` / :func:`available` import the ``objective`` module of every sub-package of
``meta_train`` that has one, found by name on disk (:func:`objective_modules`): the registry
names no method and imports neither a method nor the command line until asked, and a new method
becomes searchable by adding one file.

An objective takes the values of its trainer's config (a preset's, the search's fixed values,
the short trial budget and the sampled decisions, merged), trains, and returns one validation
number; along the way it may ``report(step, value)`` the same metric so that a pruner can stop
it (the reporter raises the search's "pruned" exception, which the objective lets through).
The values a search finds are written as a preset that the trainer's own command accepts
unchanged (``trainer_command``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meta_train.common.config import ConfigError

Reporter = Callable[[int, float], None]
"""``report(step, value)``: an intermediate value of the objective's metric (may raise the
search's "pruned" exception)."""


@dataclass(frozen=True)
class TrainableObjective:
    """A trainer offered to searches.

    Attributes:
        name: the name searches use (``objective: estimator``).
        description: one line for ``--help`` and listings.
        direction: ``minimize`` or ``maximize``.
        metric: what the returned number is (units, on which data).
        fields: the config fields a search may set; ``None``: any name (an objective that
            scores the decisions themselves, such as a synthetic benchmark).
        base_values: ``base_values(preset)``: the trainer's values for a preset name or path
            (``""``: the config's defaults), at its full budget.
        check: ``check(values)``: build the trainer's config from the values and validate it
            (raises :class:`~meta_train.common.config.ConfigError`).
        evaluate: ``evaluate(values, report, workdir) -> float``: train with these values and
            return the metric on validation data (never the test data of a final report);
            ``workdir`` is an empty scratch folder of this trial.
        prepare: ``prepare(values)``: make what every trial shares (datasets) once, before the
            trials start, so that workers do not race to make it; ``None``: nothing to make.
        trainer_command: the command that trains with a written preset, ``{preset}`` standing
            for its path (e.g. ``meta-train estimator --preset {preset}``).
        takes_search_space: the objective's config has a ``search_space`` field that receives
            the search space (a synthetic objective scores strings of that space).
        outputs: ``outputs(folder)``: config values that send the trainer's outputs into
            ``folder`` (the best config's), so that training the written config overwrites
            nothing a preset points at (e.g. a shipped model); ``None``: nothing to redirect.
    """

    name: str
    description: str
    direction: str
    metric: str
    fields: tuple[str, ...] | None
    base_values: Callable[[str], dict[str, Any]]
    check: Callable[[Mapping[str, Any]], Any]
    evaluate: Callable[[dict[str, Any], Reporter, Path], float]
    prepare: Callable[[dict[str, Any]], None] | None = None
    trainer_command: str = ""
    takes_search_space: bool = False
    outputs: Callable[[Path], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"objective {self.name!r}: direction must be minimize or "
                             f"maximize, got {self.direction!r}")


_REGISTRY: dict[str, TrainableObjective] = {}


def register(objective: TrainableObjective) -> TrainableObjective:
    """Add an objective (a method's ``objective`` module calls this when imported)."""
    known = _REGISTRY.get(objective.name)
    if known is not None and known is not objective and known.evaluate is not objective.evaluate:
        raise ValueError(f"two objectives are named {objective.name!r}")
    _REGISTRY[objective.name] = objective
    return objective


def objective_modules() -> list[str]:
    """``meta_train.<method>.objective`` of every sub-package that has one, by name.

    The sub-packages are listed from ``meta_train``'s folder (as the command line lists their
    ``cli`` modules), so this shared module names no method and does not import the CLI.
    """
    root = Path(__file__).resolve().parents[1]
    shared = Path(__file__).resolve().parent.name
    return [f"{root.name}.{info.name}.objective"
            for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda m: m.name)
            if info.ispkg and info.name != shared
            and (root / info.name / "objective.py").is_file()]


def _discover() -> None:
    """Import every method's ``objective`` module (each registers its objectives)."""
    for name in objective_modules():
        importlib.import_module(name)


def available() -> dict[str, TrainableObjective]:
    """Every registered objective, by name."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> TrainableObjective:
    """The objective called ``name``.

    Raises:
        ConfigError: no method registers it (the message lists those that do).
    """
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown objective {name!r} (known: {', '.join(available())})")
    return _REGISTRY[name]
