"""The Meta-LSTM optimiser: Andrychowicz's preprocessing, a first step close to SGD's at
initialisation, and the learner's gradients entering as constants."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from meta_train.common.meta_learning import flatten
from meta_train.common.tasks.sinusoid import SinusoidConfig, SinusoidTask
from meta_train.meta_lstm import MetaLSTMOptimizer, preprocess
from meta_train.meta_lstm.train import MetaLSTMLearner


def test_preprocessing_gives_log_scale_and_sign_or_a_scaled_value():
    x = torch.tensor([[1.0], [-1e-2], [1e-6], [0.0]])
    out = preprocess(x, p=10.0)
    assert out.shape == (4, 2)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[1], torch.tensor([math.log(1e-2) / 10, -1.0]))
    # below e^-10 ~ 4.5e-5: (-1, e^10 x)
    torch.testing.assert_close(out[2], torch.tensor([-1.0, 1e-6 * math.exp(10)]))
    torch.testing.assert_close(out[3], torch.tensor([-1.0, 0.0]))


def _learner(seed: int = 0):
    torch.manual_seed(seed)
    task = SinusoidTask(SinusoidConfig(hidden=16))
    model = task.build_model()
    meta = MetaLSTMOptimizer(flatten(dict(model.named_parameters()), batched=False))
    model.requires_grad_(False)
    return task, MetaLSTMLearner(model, meta, task)


def test_at_initialisation_a_step_is_close_to_an_sgd_step():
    """Gate biases start at f ~ 1 (bias in [4, 6]) and i ~ 0.01 (bias in [-5, -4]) and the
    gate weights near zero: the update is ``f theta - i grad``, an SGD step of about i with a
    shrinkage of at most 2%."""
    task, learner = _learner()
    batch = task.sample(__import__("numpy").random.default_rng(0), 4)
    theta0, state = learner.meta.initial(batch.tasks)
    loss, grad = learner.support_grad(theta0, batch)
    theta1, (_, _, f, i) = learner.meta.step(theta0, state, loss, grad)
    assert f.min() > 0.98 and f.max() < 0.998
    f, i = f.detach(), i.detach()
    lo, hi = 1 / (1 + math.exp(5.05)), 1 / (1 + math.exp(3.95))
    assert lo < i.min() and i.max() < hi
    # one step size for every coordinate (the gate weights start near zero)
    assert float(i.std() / i.mean()) < 0.05
    lr = float(i.mean())
    sgd = theta0 - lr * grad
    step, sgd_step = (theta1 - theta0).detach(), (sgd - theta0).detach()
    cos = torch.nn.functional.cosine_similarity(step.flatten(), sgd_step.flatten(), dim=0)
    assert cos > 0.9
    # without the shrinkage, the step is SGD's with step size i
    shrunk = (f.reshape(theta0.shape) * theta0).detach()
    cos = torch.nn.functional.cosine_similarity((theta1.detach() - shrunk).flatten(),
                                                sgd_step.flatten(), dim=0)
    assert cos > 0.999
    # the remaining difference is the forget gate's shrinkage and i's spread over coordinates
    bound = 0.02 * theta0.abs() + (hi - lo) * grad.abs() + 1e-6
    assert ((theta1 - sgd).abs() <= bound).all()


def test_learner_gradients_are_constants_and_the_meta_gradient_reaches_the_meta_learner():
    task, learner = _learner(1)
    batch = task.sample(__import__("numpy").random.default_rng(1), 3)
    theta, state = learner.meta.initial(batch.tasks)
    loss, grad = learner.support_grad(theta, batch)
    assert not grad.requires_grad and not loss.requires_grad
    theta, _ = learner.unroll(batch, 3)
    query = task.loss(learner.predict(theta, *batch.query_x), batch.query_y).mean()
    query.backward()
    for name, p in learner.meta.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert learner.meta.c0.grad.abs().sum() > 0
    assert learner.meta.cell.b_i.grad.abs().sum() > 0


def test_adapter_scores_the_counts_asked_for_and_zero_is_the_initialisation():
    task, learner = _learner(2)
    batch = task.sample(__import__("numpy").random.default_rng(2), 2)
    out = learner.adapter(batch, [0, 2])
    assert set(out) == {0, 2}
    theta0, _ = learner.meta.initial(2)
    torch.testing.assert_close(out[0], learner.predict(theta0, *batch.query_x))
    assert not torch.equal(out[0], out[2])


def test_no_learned_init_keeps_c0():
    c0 = torch.randn(7)
    meta = MetaLSTMOptimizer(c0, hidden=4, learn_init=False)
    assert not meta.c0.requires_grad
    assert sum(p.numel() for p in meta.parameters() if p.requires_grad) > 0
    with pytest.raises(RuntimeError):
        nn.LSTMCell(4, 4)(torch.zeros(1, 5))  # guard: the first layer reads 4 inputs
