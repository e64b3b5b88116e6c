"""The controller RNN and REINFORCE (Zoph & Le 2017): rewarded choices gain probability, the
baseline leaves the expected gradient unchanged, the same history gives the same weights."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from meta_train.nas.controller import Controller, ControllerTrainer, reinforce_gradient
from meta_train.nas.space import SearchSpace

ONE = SearchSpace.from_mapping({"decisions": [{"name": "op", "choices": ["a", "b", "c", "d"]}]})
TWO = SearchSpace.from_mapping({"decisions": [{"name": "x", "choices": [0, 1, 2]},
                                              {"name": "y", "choices": [0, 1, 2]}]})
SKIPS = SearchSpace.from_mapping({"layers": {"count": 3, "skip": True,
                                             "decisions": [{"name": "w", "choices": [8, 16]}]}})


def _p(trainer: ControllerTrainer, params: dict) -> float:
    with torch.no_grad():
        return float(trainer.controller.log_prob(params).exp())


def test_the_network_is_zoph_and_les():
    c = Controller(TWO)
    assert [cell.hidden_size for cell in c.cells] == [35, 35]
    assert all(p.abs().max() <= 0.08 for p in c.parameters())
    # the sampled choice is fed to the next step: P(y = 0 | x) depends on x
    with torch.no_grad():
        joint = np.array([[float(c.log_prob({"x": x, "y": y}).exp()) for y in range(3)]
                          for x in range(3)])
    conditional = joint[:, 0] / joint.sum(axis=1)
    assert len({round(v, 12) for v in conditional}) == 3


def test_reinforce_moves_probability_towards_the_rewarded_choice():
    trainer = ControllerTrainer(ONE, seed=0, lr=0.05)
    rng = np.random.default_rng(0)
    before = _p(trainer, {"op": "c"})
    for _ in range(30):
        batch = [trainer.sample(rng) for _ in range(8)]
        trainer.update(batch, [1.0 if a["op"] == "c" else 0.0 for a in batch])
    assert 0.15 < before < 0.35
    assert _p(trainer, {"op": "c"}) > 0.8


def test_reinforce_learns_skip_connections_through_the_anchors():
    trainer = ControllerTrainer(SKIPS, seed=1, lr=0.05)
    rng = np.random.default_rng(1)

    def p_skip() -> float:  # P(layer2 takes layer0 | the other decisions of one string)
        base = {"layer0.w": 8, "layer1.w": 16, "layer1.skip0": False, "layer2.w": 8,
                "layer2.skip1": True}
        yes, no = (_p(trainer, {**base, "layer2.skip0": v}) for v in (True, False))
        return yes / (yes + no)

    before = p_skip()
    for _ in range(25):
        batch = [trainer.sample(rng) for _ in range(8)]
        trainer.update(batch, [float(a["layer2.skip0"]) for a in batch])
    assert p_skip() > before + 0.3


def test_the_baseline_leaves_the_expected_gradient_unchanged():
    """E[grad log P(a) (R - b)] = E[grad log P(a) R]: exactly (by enumeration of the nine
    strings) and by sampling (the difference is within the sampling error, along random
    directions); the baseline lowers the estimate's variance."""
    c = Controller(TWO, seed=3)
    strings = [{"x": x, "y": y} for x, y in itertools.product(range(3), range(3))]
    grads = {i: reinforce_gradient(c, [s], [1.0], 0.0) for i, s in enumerate(strings)}
    with torch.no_grad():
        probs = np.array([float(c.log_prob(s).exp()) for s in strings])
    assert abs(probs.sum() - 1.0) < 1e-12
    exact = sum(probs[i] * grads[i] for i in grads)  # E[grad log P] = grad sum P = 0
    assert np.abs(exact).max() < 1e-12

    def reward(s: dict) -> float:
        return 10.0 + s["x"] - 0.5 * s["y"]  # a large offset: the variance the baseline removes

    rng = np.random.default_rng(0)
    n = 20000
    idx = rng.choice(9, size=n, p=probs)
    directions = np.random.default_rng(1).normal(size=(len(exact), 5))
    g = np.stack([grads[i] @ directions for i in range(9)])[idx]  # grad log P, projected
    r = np.array([reward(strings[i]) for i in idx])
    b = float(np.dot(probs, [reward(s) for s in strings]))
    plain, based = g * r[:, None], g * (r - b)[:, None]
    diff = plain - based  # = b * grad log P
    se = diff.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(diff.mean(axis=0)) < 4 * se)
    assert np.all(based.var(axis=0) < 0.2 * plain.var(axis=0))


def test_the_same_history_gives_the_same_controller():
    def run() -> tuple[str, list]:
        t = ControllerTrainer(SKIPS, seed=5)
        rng = np.random.default_rng(2)
        draws = []
        for _ in range(4):
            batch = [t.sample(rng) for _ in range(3)]
            draws += batch
            t.update(batch, [float(a["layer0.w"]) for a in batch])
        return t.digest(), draws

    torch.set_num_threads(2)
    a = run()
    torch.set_num_threads(1)
    assert run() == a
    assert ControllerTrainer(SKIPS, seed=6).digest() != ControllerTrainer(SKIPS, seed=5).digest()
