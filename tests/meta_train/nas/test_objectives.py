"""Objectives reach the trainers through ``meta_train.common.objectives``: each method
registers its own, the search finds them by discovery, tiny budgets train for real, and the
best config is a preset the trainer accepts unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import optuna
import pytest

from meta_train.common import objectives as registry
from meta_train.common.config import ConfigError, build_config
from meta_train.estimator.config import EstimatorConfig
from meta_train.estimator.config import preset_values as estimator_preset
from meta_train.nas import synthetic
from meta_train.nas.config import NASConfig, preset_values
from meta_train.nas.space import SearchSpace
from meta_train.nas.study import TrialFunction, best_config, write_best
from meta_train.rdpg.config import RDPGConfig
from meta_train.rdpg.config import preset_values as rdpg_preset

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[3]
POLICY = str(ROOT / "models" / "pusher_policy.onnx")


def test_methods_register_their_objectives_found_by_discovery():
    modules = registry.objective_modules()
    assert {"meta_train.estimator.objective", "meta_train.rdpg.objective",
            "meta_train.nas.objective"} <= set(modules)
    assert not any(m.startswith("meta_train.common.") for m in modules)
    assert {"estimator", "rdpg", "dynamics_model", "synthetic"} <= set(registry.available())
    with pytest.raises(ConfigError, match="unknown objective 'nope' \\(known: "):
        registry.get("nope")


def test_every_preset_fits_its_objective():
    from meta_train.nas.study import check_space, fixed_values

    for name in ("synthetic", "estimator", "rdpg", "dynamics_model"):
        cfg = build_config(NASConfig, preset_values(name))
        obj = registry.get(cfg.objective)
        space = SearchSpace.from_mapping(cfg.space)
        check_space(space, obj, fixed_values(cfg, obj, space))


def test_the_synthetic_optimum_is_the_planted_target():
    space = SearchSpace.from_mapping(preset_values("synthetic")["space"])
    goal = synthetic.target(space, 4)
    assert synthetic.score(space, goal, goal) == 1.0
    rng = np.random.default_rng(0)
    others = [space.sample_uniform(rng) for _ in range(200)]
    assert max(synthetic.score(space, o, goal) for o in others if o != goal) < 1.0
    near = dict(goal, batch={16: 32, 32: 64, 64: 128, 128: 256, 256: 128}[goal["batch"]])
    far = dict(goal, batch=16 if goal["batch"] >= 128 else 256)
    assert synthetic.score(space, near, goal) > synthetic.score(space, far, goal)


def test_the_best_config_is_a_preset_the_trainer_accepts_unchanged(tmp_path):
    for preset, load, cls in (("estimator", estimator_preset, EstimatorConfig),
                              ("rdpg", rdpg_preset, RDPGConfig)):
        cfg = build_config(NASConfig, preset_values(preset))
        base = registry.get(cfg.objective)
        first = cfg.space["decisions"][0]["name"]
        obj = dataclasses.replace(base, evaluate=lambda v, r, w, k=first: hash(str(v[k])) % 7)
        space = SearchSpace.from_mapping(cfg.space)
        study = optuna.create_study(direction=obj.direction,
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        from meta_train.nas.study import fixed_values

        study.optimize(TrialFunction(obj, space, fixed_values(cfg, obj, space)), n_trials=6)
        values, best = best_config(cfg, study, obj, space, tmp_path)
        out = tmp_path / f"{preset}.yaml"
        write_best(out, values, study, best, obj, f"sqlite:///{tmp_path / 'x.db'}")
        trained = build_config(cls, load(str(out)))  # what `meta-train <trainer> --preset` does
        full = build_config(cls, load(cfg.base_preset))
        for d in space.flat:
            if d.name in best.params:
                assert getattr(trained, d.name) == best.params[d.name]
        budget_fields = set(cfg.budget) - {d.name for d in space.flat}
        for name in budget_fields - {"out"}:  # the trial budget is left out: the full one stays
            assert getattr(trained, name) == getattr(full, name)
        assert f"--preset {out}" in out.read_text()
        if preset == "estimator":  # training it writes beside it, not over the shipped model
            assert trained.out == str(tmp_path / "pusher_estimator.onnx")


def _report():
    seen: list[tuple[int, float]] = []
    return seen, lambda step, value: seen.append((step, value))


@pytest.mark.slow
def test_the_estimator_objective_trains_on_a_tiny_budget(tmp_path):
    obj = registry.get("estimator")
    values = {**obj.base_values("pusher"), "policy": POLICY, "episode_steps": 40,
              "train_episodes": 10, "val_episodes": 8, "hidden": 16, "epochs": 1,
              "workers": 1, "data_dir": str(tmp_path / "data"), "torch_threads": 1,
              "progress": False, "report_k": 5}
    obj.prepare(values)
    made = sorted(p.name.split("_")[0] for p in (tmp_path / "data").iterdir())
    assert made == ["train", "val"]
    value = obj.evaluate(values, _report()[1], tmp_path)
    assert np.isfinite(value) and value > 0
    assert sorted(p.name.split("_")[0] for p in (tmp_path / "data").iterdir()) == made


def test_the_dynamics_model_objective_reports_every_epoch(tmp_path):
    obj = registry.get("dynamics_model")
    values = {"policy": POLICY, "episode_steps": 30, "train_episodes": 4, "val_episodes": 2,
              "workers": 1, "data_dir": str(tmp_path), "hidden": 16, "layers": 1,
              "epochs": 3, "batch_size": 64}
    seen, report = _report()
    value = obj.evaluate(values, report, tmp_path)
    assert [s for s, _ in seen] == [0, 1, 2] and value == seen[-1][1] and np.isfinite(value)


def test_the_rdpg_objective_trains_reports_and_can_be_pruned(tmp_path):
    obj = registry.get("rdpg")
    values = {"env_id": "MetaPusherPush-v0", "hidden": 16, "updates_per_iteration": 2,
              "batch_episodes": 4, "warmup_episodes": 2, "eval_every": 2, "eval_episodes": 1,
              "checkpoint_every": 100, "total_env_steps": 800, "device": "cpu"}
    seen, report = _report()
    value = obj.evaluate(values, report, tmp_path / "a")
    steps = [s for s, _ in seen]  # one report per periodic evaluation, at its env steps
    assert len(steps) >= 2 and steps == list(range(steps[0], 801, steps[0]))
    assert 0.0 <= value < 2.0 and all(0.0 <= v < 2.0 for _, v in seen)

    def prune(step, value):
        raise optuna.TrialPruned("stop")

    with pytest.raises(optuna.TrialPruned):
        obj.evaluate(values, prune, tmp_path / "b")
