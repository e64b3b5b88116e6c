"""Search spaces: what users write becomes Optuna parameters and config values; a bad
description is refused with one message that names the decision."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from meta_train.common.config import ConfigError
from meta_train.nas.space import SearchSpace, SpaceError

LAYERED = {
    "decisions": [
        {"name": "optimizer", "choices": ["sgd", "adam"]},
        {"name": "momentum", "choices": [0.0, 0.9], "when": {"optimizer": "sgd"}},
        {"name": "lr", "low": 1e-4, "high": 1e-2, "log": True, "bins": 3},
        {"name": "tau", "low": 0.01, "high": 0.1},
    ],
    "layers": {"count": {"name": "n_layers", "choices": [1, 2, 3]},
               "decisions": [{"name": "width", "choices": [16, 32]},
                             {"name": "kernel", "choices": [3, 5], "when": {"width": 32}}],
               "skip": True},
}


def test_a_layered_space_expands_into_named_parameters_in_emission_order():
    space = SearchSpace.from_mapping(LAYERED)
    names = [d.name for d in space.decisions]
    assert names[:5] == ["optimizer", "momentum", "lr", "tau", "n_layers"]
    assert names[5:] == ["layer0.width", "layer0.kernel", "layer1.width", "layer1.kernel",
                         "layer1.skip0", "layer2.width", "layer2.kernel", "layer2.skip0",
                         "layer2.skip1"]
    assert space.by_name["lr"].choices == (0.0001, 0.001, 0.01)
    dists = space.distributions()
    assert isinstance(dists["tau"], FloatDistribution)
    assert dists["layer2.skip1"] == CategoricalDistribution((False, True))
    assert "tau" not in space.distributions(discrete_only=True)


def test_conditions_decide_which_decisions_are_suggested():
    space = SearchSpace.from_mapping(LAYERED)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        params = space.suggest(trial)
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        n = params["n_layers"]
        assert all(f"layer{i}.width" in params for i in range(n))
        assert not any(f"layer{i}.width" in params for i in range(n, 3))
        for i in range(n):
            assert (f"layer{i}.kernel" in params) == (params[f"layer{i}.width"] == 32)
        assert space.complete(params)
        study.tell(trial, 0.0)


def test_structure_and_flatten_are_inverse_and_give_config_values():
    space = SearchSpace.from_mapping(LAYERED)
    params = {"optimizer": "adam", "lr": 0.001, "tau": 0.05, "n_layers": 3,
              "layer0.width": 16, "layer1.width": 32, "layer1.kernel": 5,
              "layer1.skip0": True, "layer2.width": 16, "layer2.skip0": False,
              "layer2.skip1": True}
    values = space.structure(params)
    assert values == {"optimizer": "adam", "lr": 0.001, "tau": 0.05, "n_layers": 3,
                      "layers": [{"width": 16, "inputs": []},
                                 {"width": 32, "kernel": 5, "inputs": [0]},
                                 {"width": 16, "inputs": [1]}]}
    assert space.flatten(values) == params


def test_uniform_strings_are_complete_and_seeded():
    space = SearchSpace.from_mapping(LAYERED)
    a = space.sample_uniform(np.random.default_rng(3))
    assert a == space.sample_uniform(np.random.default_rng(3))
    assert space.complete(a)


@pytest.mark.parametrize("description, message", [
    ([1, 2], "must be a mapping"),
    ({"decisions": []}, "no decisions"),
    ({"decision": [{"name": "a", "choices": [1]}]}, "unknown keys ['decision']"),
    ({"decisions": [{"name": "a b", "choices": [1]}]}, "identifier"),
    ({"decisions": [{"name": "a", "choices": []}]}, "non-empty list"),
    ({"decisions": [{"name": "a", "choices": [[1, 2]]}]}, "not a number, string"),
    ({"decisions": [{"name": "a", "choices": [1, 1.0]}]}, "repeat a value"),
    ({"decisions": [{"name": "a", "choices": [1]}, {"name": "a", "choices": [2]}]},
     "used twice"),
    ({"decisions": [{"name": "a"}]}, "give choices, or a range"),
    ({"decisions": [{"name": "a", "low": 1, "high": 0}]}, "low must be below high"),
    ({"decisions": [{"name": "a", "low": 0, "high": 1, "log": True}]}, "log range needs"),
    ({"decisions": [{"name": "a", "low": "1e-4", "high": 1}]}, "finite numbers"),
    ({"decisions": [{"name": "a", "low": 0, "high": 1, "bins": 1}]}, "bins must be"),
    ({"decisions": [{"name": "a", "choices": [1], "when": {"b": 1}}]}, "not an earlier"),
    ({"decisions": [{"name": "b", "choices": [1]},
                    {"name": "a", "choices": [1], "when": {"b": 2}}]}, "not one of its choices"),
    ({"decisions": [{"name": "b", "low": 0, "high": 1},
                    {"name": "a", "choices": [1], "when": {"b": 0.5}}]}, "continuous"),
    ({"layers": {"count": 0, "decisions": [{"name": "w", "choices": [1]}]}}, "count must be"),
    ({"layers": {"count": {"name": "n", "choices": ["two"]},
                 "decisions": [{"name": "w", "choices": [1]}]}}, "whole numbers"),
    ({"layers": {"count": 2, "decisions": []}}, "non-empty list"),
    ({"layers": {"count": 2, "decisions": [{"name": "inputs", "choices": [1]}]}},
     "not 'inputs'"),
])
def test_a_bad_space_gives_one_clear_error(description, message):
    with pytest.raises(SpaceError) as e:
        SearchSpace.from_mapping(description)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ConfigError)  # the CLI turns it into exit status 2
