"""The controller as an Optuna sampler, and Optuna's own samplers seeded per trial.

:class:`ControllerSampler` implements Optuna's ``BaseSampler``:

* ``infer_relative_search_space`` returns the categorical decisions of the user's
  :class:`~meta_train.nas.space.SearchSpace` (not a space Optuna infers from past trials);
* ``sample_relative`` draws the whole decision string from the controller at once, conditional
  decisions and skip connections included (an inactive decision is not emitted), and records it
  in the trial (system attributes ``nas:string``, ``nas:batches``, ``nas:digest``);
* ``sample_independent`` hands every other parameter (continuous ranges without ``bins``, or
  anything the objective suggests outside the space) to another sampler (random by default).

The controller is not trained in the sampler's memory but recovered from the study's storage:
before each draw the sampler replays the finished trials in trial-number order, in batches of
``m``, each batch one REINFORCE step. A batch is applied once its ``m`` members have finished
and every trial before them has, so every worker, and a study resumed later, applies the same
batches in the same order and holds the same weights (a trial records the number of batches
and the digest of the controller that drew it; a worker that computes another digest for the
same batches warns). With asynchronous workers a trial is drawn by the controller of the
batches complete when it started, so the strings in flight come from a slightly older
controller (as in Zoph & Le's parameter-server training).

Members and rewards (a minimised objective's reward is minus its value):

* COMPLETE: its value;
* PRUNED: its last reported value (a pruned trial is stopped where it looked worse than
  others, so that value ranks it low), or, without one, as a failed trial;
* FAIL raised by the objective (the search marks it with the user attribute ``nas_error``): the
  worst reward of the study's members so far, including its own batch (no reward yet: it
  takes no part in the step);
* FAIL without that mark (a worker killed or lost its heartbeat): no member; Optuna's retry
  callback enqueues the same string, with the original's record, as a new trial;
* enqueued trials (``study.enqueue_trial``): members, with the values they fixed; the
  controller learns from them as if it had drawn them (off-policy).

Optuna's :class:`~optuna.samplers.RandomSampler` and :class:`~optuna.samplers.TPESampler` are
wrapped so that their generators are reseeded from ``(seed, trial number)`` at each trial: two
workers with the same seed do not draw the same values, and a random study is reproducible
whatever the number of workers.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from meta_train.nas.controller import ControllerTrainer
from meta_train.nas.space import SearchSpace, index_of

SAMPLERS = ("controller", "tpe", "random")
ERROR_ATTR = "nas_error"
"""User attribute the search sets on a trial whose objective raised (or returned NaN)."""
STRING_ATTR, BATCHES_ATTR, DIGEST_ATTR = "nas:string", "nas:batches", "nas:digest"


class ReproducibilityWarning(UserWarning):
    """Two processes computed different controller weights from the same trials."""


def trial_seed(seed: int, number: int, stream: int = 0) -> int:
    """A 32-bit seed for trial ``number`` of a study seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(number), stream]).generate_state(1)[0])


class PerTrialRandomSampler(RandomSampler):
    """:class:`~optuna.samplers.RandomSampler` reseeded from ``(seed, trial number)``."""

    def __init__(self, seed: int = 0, stream: int = 0) -> None:
        super().__init__(seed=seed)
        self._base_seed, self._stream = int(seed), stream

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._rng = LazyRandomState(trial_seed(self._base_seed, trial.number, self._stream))
        super().before_trial(study, trial)


class PerTrialTPESampler(TPESampler):
    """:class:`~optuna.samplers.TPESampler` (Optuna's defaults) reseeded from
    ``(seed, trial number)``; its draws still depend on which trials had finished."""

    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._base_seed = int(seed)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        s = trial_seed(self._base_seed, trial.number)
        self._rng = LazyRandomState(s)
        self._random_sampler._rng = LazyRandomState(trial_seed(self._base_seed, trial.number, 1))
        super().before_trial(study, trial)


class ControllerSampler(BaseSampler):
    """Zoph & Le's controller, trained by REINFORCE on the study's results (see the module).

    Args:
        space: the user's search space.
        seed: seed of the initial weights and of each trial's draw (with its number).
        batch_size: ``m``, trials per REINFORCE step.
        lr: Adam's learning rate.
        baseline_decay: decay of the moving-average baseline.
        hidden, num_layers, init_range: the controller network.
        independent_sampler: for parameters outside the controller's string (default: random,
            seeded per trial).
    """

    def __init__(self, space: SearchSpace, *, seed: int = 0, batch_size: int = 5,
                 lr: float = 6e-4, baseline_decay: float = 0.95, hidden: int = 35,
                 num_layers: int = 2, init_range: float = 0.08,
                 independent_sampler: BaseSampler | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.space, self.seed, self.batch_size = space, int(seed), batch_size
        self._net = {"lr": lr, "baseline_decay": baseline_decay, "hidden": hidden,
                     "num_layers": num_layers, "init_range": init_range}
        self._independent = independent_sampler or PerTrialRandomSampler(seed, stream=2)
        self._warned = False
        self._reset()

    def _reset(self) -> None:
        self.trainer = ControllerTrainer(self.space, self.seed, **self._net)
        self._cursor = 0  # trials consumed (all finished)
        self._pending: list[tuple[dict[str, Any], float | None]] = []
        self._worst: float | None = None
        self.digests = [self.trainer.digest()]  # after 0, 1, ... batches
        self.members = 0
        self._study_id: int | None = None

    @property
    def batches(self) -> int:
        """REINFORCE steps applied so far."""
        return self.trainer.updates

    def settings(self) -> dict[str, Any]:
        """What must agree between the workers of one study."""
        return {"seed": self.seed, "batch_size": self.batch_size, **self._net,
                "space": self.space.digest()}

    # --- Optuna's interface -----------------------------------------------------------------
    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        self._raise_error_if_multi_objective(study)
        return self.space.distributions(discrete_only=True)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        recorded = trial.system_attrs.get(STRING_ATTR)
        if recorded is not None:  # a retry: the failed trial's string, record and all
            params = self._decode(recorded)
        else:
            self.sync(study)
            fixed = dict(trial.system_attrs.get("fixed_params", {}))
            rng = np.random.default_rng(trial_seed(self.seed, trial.number, 1))
            params = self.trainer.sample(rng, fixed)
            storage = study._storage
            storage.set_trial_system_attr(trial._trial_id, STRING_ATTR, self._encode(params))
            storage.set_trial_system_attr(trial._trial_id, BATCHES_ATTR, self.batches)
            storage.set_trial_system_attr(trial._trial_id, DIGEST_ATTR, self.digests[-1])
        return {k: v for k, v in params.items() if k in search_space}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._independent.sample_independent(study, trial, param_name,
                                                    param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._independent.after_trial(study, trial, state, values)

    # --- the study's history -> the controller ----------------------------------------------
    def _encode(self, params: Mapping[str, Any]) -> dict[str, int]:
        return {k: index_of(self.space.by_name[k].choices, v) for k, v in params.items()}

    def _decode(self, string: Mapping[str, int]) -> dict[str, Any]:
        return {k: self.space.by_name[k].choices[int(i)] for k, i in string.items()
                if k in self.space.by_name}

    def _string(self, t: FrozenTrial) -> dict[str, Any] | None:
        """The categorical decisions a finished trial was evaluated with, or None."""
        if STRING_ATTR in t.system_attrs:
            return self._decode(t.system_attrs[STRING_ATTR])
        params = {k: v for k, v in t.params.items()
                  if k in self.space.by_name and self.space.by_name[k].discrete}
        for d in self.space.active(params):
            if d.discrete and (d.name not in params
                               or index_of(d.choices, params[d.name]) is None):
                return None
        return params

    @staticmethod
    def _reward(t: FrozenTrial, sign: float) -> tuple[bool, float | None]:
        """``(member, reward)``; reward None: a failed member."""
        if t.state == TrialState.COMPLETE:
            return True, sign * float(t.value)
        if t.state == TrialState.PRUNED:
            if t.value is not None:
                return True, sign * float(t.value)
            if t.intermediate_values:
                return True, sign * float(t.intermediate_values[max(t.intermediate_values)])
            return True, None
        if t.state == TrialState.FAIL and ERROR_ATTR in t.user_attrs:
            return True, None
        return False, None

    def sync(self, study: Study) -> None:
        """Apply every batch the study's finished trials complete (in trial-number order)."""
        if self._study_id is not None and self._study_id != study._study_id:
            self._reset()
        self._study_id = study._study_id
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        trials = study.get_trials(deepcopy=False)
        for t in trials[self._cursor:]:
            if not t.state.is_finished():
                break
            self._cursor += 1
            member, reward = self._reward(t, sign)
            string = self._string(t) if member else None
            if string is None:
                continue
            self._check_digest(t)
            self._pending.append((string, reward))
            if len(self._pending) == self.batch_size:
                self._apply(self._pending)
                self._pending = []

    def _apply(self, batch: list[tuple[dict[str, Any], float | None]]) -> None:
        real = [r for _, r in batch if r is not None]
        if real:
            worst = min(real)
            self._worst = worst if self._worst is None else min(self._worst, worst)
        rewarded = [(s, r if r is not None else self._worst) for s, r in batch]
        rewarded = [(s, r) for s, r in rewarded if r is not None]
        if rewarded:
            self.trainer.update([s for s, _ in rewarded], [r for _, r in rewarded])
        else:  # nothing to learn from yet; the batch still counts
            self.trainer.updates += 1
        self.members += len(batch)
        self.digests.append(self.trainer.digest())

    def _check_digest(self, t: FrozenTrial) -> None:
        k, digest = t.system_attrs.get(BATCHES_ATTR), t.system_attrs.get(DIGEST_ATTR)
        if k is None or digest is None or k >= len(self.digests) or self._warned:
            return
        if self.digests[k] != digest:
            self._warned = True
            warnings.warn(f"trial {t.number} was drawn by a controller whose state after {k} "
                          f"batches differs from the one this process computed (another "
                          f"torch build or platform?); the study's trials stay valid, but "
                          f"workers do not agree bit for bit", ReproducibilityWarning,
                          stacklevel=2)


def make_sampler(name: str, space: SearchSpace, seed: int, *, batch_size: int = 5,
                 lr: float = 6e-4, baseline_decay: float = 0.95) -> BaseSampler:
    """``controller``, ``tpe`` or ``random``, seeded per trial."""
    if name == "controller":
        return ControllerSampler(space, seed=seed, batch_size=batch_size, lr=lr,
                                 baseline_decay=baseline_decay)
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return PerTrialTPESampler(seed=seed)
    if name == "random":
        return PerTrialRandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r} (known: {', '.join(SAMPLERS)})")
