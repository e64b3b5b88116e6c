"""The controller as an Optuna sampler: it draws whole strings from the user's space, learns
from the study's storage (so a resumed study continues exactly), and gives pruned, failed and
enqueued trials the rewards its docstring promises; Optuna's samplers are seeded per trial."""

from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import pytest

from meta_train.common.config import build_config
from meta_train.common.objectives import TrainableObjective
from meta_train.nas.config import NASConfig, preset_values
from meta_train.nas.sampler import (
    BATCHES_ATTR,
    DIGEST_ATTR,
    ERROR_ATTR,
    STRING_ATTR,
    ControllerSampler,
    make_sampler,
)
from meta_train.nas.space import SearchSpace
from meta_train.nas.study import TrialError, TrialFunction, open_study, run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
SMALL = {"decisions": [{"name": "optimizer", "choices": ["sgd", "adam"]},
                       {"name": "momentum", "choices": [0.0, 0.9], "when": {"optimizer": "sgd"}},
                       {"name": "batch", "choices": [16, 32, 64]}],
         "layers": {"count": {"name": "n_layers", "choices": [1, 2, 3]}, "skip": True,
                    "decisions": [{"name": "width", "choices": [16, 32, 64]}]}}
SYNTHETIC = {**preset_values("synthetic"), "space": SMALL}
SPACE = SearchSpace.from_mapping(SMALL)


def _cfg(tmp_path, **kw) -> dict:
    values = {**SYNTHETIC, "storage": f"sqlite:///{tmp_path / 's.db'}", "batch_size": 2,
              "controller_lr": 0.01, "progress": False, **kw}
    return build_config(NASConfig, values).to_dict()


def _params(storage: str, name: str) -> list[dict]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t.params for t in study.trials]


def test_sample_relative_draws_whole_strings_from_the_users_space(tmp_path):
    sampler = ControllerSampler(SPACE, seed=0, batch_size=3)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for _ in range(7):
        trial = study.ask()
        params = SPACE.suggest(trial)
        assert SPACE.complete(params)
        frozen = study._storage.get_trial(trial._trial_id)
        assert sampler._decode(frozen.system_attrs[STRING_ATTR]) == params  # all discrete
        study.tell(trial, float(len(params)))
    assert sampler.batches == 2  # 7 finished trials, batches of 3: 2 steps, 1 pending
    assert study.trials[6].system_attrs[BATCHES_ATTR] == 2
    assert study.trials[6].system_attrs[DIGEST_ATTR] == sampler.digests[2]


def test_a_resumed_study_continues_as_if_never_stopped(tmp_path):
    cfg = _cfg(tmp_path)
    storage = cfg["storage"]
    run_worker({**cfg, "n_trials": 12}, "straight")
    run_worker({**cfg, "n_trials": 5}, "resumed")
    run_worker({**cfg, "n_trials": 12}, "resumed")  # a new process would do the same
    assert _params(storage, "resumed") == _params(storage, "straight")
    # a fresh sampler replays the storage to the controller that drew each trial
    study = optuna.load_study(study_name="resumed", storage=storage)
    fresh = ControllerSampler(SPACE, seed=0, batch_size=2, lr=0.01)
    fresh.sync(study)
    assert fresh.batches == 6
    for t in study.trials:
        assert t.system_attrs[DIGEST_ATTR] == fresh.digests[t.system_attrs[BATCHES_ATTR]]
    assert len({t.system_attrs[BATCHES_ATTR] for t in study.trials}) > 3  # it did learn


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_optunas_samplers_are_seeded_per_trial(tmp_path, sampler):
    cfg = _cfg(tmp_path, sampler=sampler, n_trials=12)
    run_worker(cfg, "a")
    run_worker({**cfg, "n_trials": 4}, "b")
    run_worker(cfg, "b")
    a, b = _params(cfg["storage"], "a"), _params(cfg["storage"], "b")
    assert a == b and len({str(p) for p in a}) > 8  # reseeded per trial, not one draw repeated


def _study_with(objective_fn, direction="maximize", batch_size=3, **kw):
    obj = TrainableObjective(name="toy", description="", direction=direction, metric="m",
                             fields=None, base_values=lambda p: {}, check=lambda v: None,
                             evaluate=objective_fn)
    sampler = ControllerSampler(SPACE, seed=0, batch_size=batch_size, **kw)
    study = optuna.create_study(sampler=sampler, direction=direction,
                                pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    return study, sampler, TrialFunction(obj, SPACE, {})


def test_failed_and_pruned_trials_take_the_rewards_documented():
    calls = []

    def objective(values, report, workdir):
        calls.append(len(calls))
        n = len(calls)
        if n == 2:
            raise RuntimeError("out of memory")
        if n == 3:
            report(0, 0.9)
            report(1, 0.2)  # below the pruner's threshold
        return 0.7 if n == 1 else 0.6

    study, sampler, fn = _study_with(objective)
    study.optimize(fn, n_trials=3, catch=(TrialError,))
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "PRUNED"]
    assert study.trials[1].user_attrs[ERROR_ATTR] == "RuntimeError: out of memory"
    assert sampler._reward(study.trials[2], 1.0) == (True, 0.2)  # its last reported value
    seen = []
    sampler.trainer.update = lambda batch, rewards: seen.append(list(rewards))
    sampler.sync(study)
    assert seen == [[0.7, 0.2, 0.2]]  # the failed trial gets the worst reward so far


def test_a_lost_trial_is_no_member_and_its_retry_replays_its_string():
    study, sampler, fn = _study_with(lambda v, r, w: 0.5, batch_size=2)
    study.optimize(fn, n_trials=1)
    trial = study.ask()  # a worker that dies mid-trial: FAIL without the objective's mark
    SPACE.suggest(trial)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    lost = study._storage.get_trial(trial._trial_id)
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, lost)
    study.optimize(fn, n_trials=1)
    retry = study.trials[2]
    assert retry.system_attrs["failed_trial"] == 1 and retry.params == lost.params
    assert retry.system_attrs[STRING_ATTR] == lost.system_attrs[STRING_ATTR]
    seen = []
    sampler.trainer.update = lambda batch, rewards: seen.append(batch)
    sampler.sync(study)
    assert seen == [[sampler._decode(study.trials[0].system_attrs[STRING_ATTR]),
                     sampler._decode(lost.system_attrs[STRING_ATTR])]]


def test_enqueued_values_are_evaluated_and_learned_from():
    study, sampler, fn = _study_with(lambda v, r, w: float(v["batch"]), batch_size=1)
    target = SPACE.sample_uniform(np.random.default_rng(9))
    study.enqueue_trial(target)
    study.optimize(fn, n_trials=2)
    assert study.trials[0].params == target
    assert sampler.batches == 1 and sampler.members == 1


def test_workers_joining_with_other_study_values_are_refused(tmp_path):
    from meta_train.common import objectives
    from meta_train.common.config import ConfigError

    cfg = build_config(NASConfig, _cfg(tmp_path))
    open_study(cfg, "x", objectives.get("synthetic"), SPACE)
    other = dataclasses.replace(cfg, batch_size=7)
    with pytest.raises(ConfigError, match="created with other batch_size"):
        open_study(other, "x", objectives.get("synthetic"), SPACE)
    assert isinstance(make_sampler("controller", SPACE, 0), ControllerSampler)
