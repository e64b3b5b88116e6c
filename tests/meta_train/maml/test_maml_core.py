"""MAML's functional core: the update's gradients are autograd's, the batched adaptation is
the per-task one, and first-order MAML differs from MAML by exactly the second-order term."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from meta_train.common.meta_learning import batched_call, expand_params
from meta_train.maml import MAML, adapt, gradient_update
from meta_train.maml.functional import gradients


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def _data(seed: int, n: int = 6):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 2, generator=g, dtype=torch.float64),
            torch.randn(n, 1, generator=g, dtype=torch.float64))


def test_the_update_uses_autograds_gradient_and_matches_sgd_on_the_module():
    net = _net()
    x, y = _data(1)
    params = dict(net.named_parameters())
    loss = (functional_call(net, params, (x,)) - y).square().mean()
    grads = gradients(loss, params)
    expected = torch.autograd.grad((net(x) - y).square().mean(), list(net.parameters()))
    for g, e in zip(grads.values(), expected, strict=True):
        torch.testing.assert_close(g, e)
    new = gradient_update(params, grads, 0.1)
    # the same step taken by torch.optim.SGD on a copy of the module
    copy = _net()
    opt = torch.optim.SGD(copy.parameters(), lr=0.1)
    (copy(x) - y).square().mean().backward()
    opt.step()
    for (name, p), q in zip(new.items(), copy.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)


def test_the_meta_gradient_is_the_derivative_through_the_update():
    """MAML's meta-gradient equals torch.func's derivative of
    ``L_query(theta - alpha * grad L_support(theta))``, second derivatives included."""
    net = _net()
    (xs, ys), (xq, yq) = _data(2), _data(3)
    alpha = 0.3

    def meta_loss(p):
        inner = torch.func.grad(lambda q: (functional_call(net, q, (xs,)) - ys)
                                .square().mean())(p)
        adapted = {k: p[k] - alpha * inner[k] for k in p}
        return (functional_call(net, adapted, (xq,)) - yq).square().mean()

    params = {k: v.detach() for k, v in net.named_parameters()}
    expected = torch.func.grad(meta_loss)(params)
    maml = MAML(net, lr=alpha)
    learner = maml.clone()
    learner.adapt((learner(xs) - ys).square().mean())
    (learner(xq) - yq).square().mean().backward()
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], msg=name)


def test_first_order_differs_by_exactly_the_second_order_term():
    """f(x) = w x; support loss 1/2 mean((w x_s)^2) has Hessian a = mean(x_s^2) = 4; query
    loss 1/2 (w - 3)^2. From w = 1, alpha = 0.1: w' = (1 - alpha a) w = 0.6; MAML's gradient
    (w' - 3)(1 - alpha a) = -1.44, first-order (w' - 3) = -2.4: they differ by
    -alpha a (w' - 3) = 0.96."""
    grads = {}
    for first_order in (False, True):
        net = nn.Linear(1, 1, bias=False).double()
        with torch.no_grad():
            net.weight.fill_(1.0)
        learner = MAML(net, lr=0.1, first_order=first_order).clone()
        xs = torch.tensor([[2.0]], dtype=torch.float64)
        learner.adapt(0.5 * learner(xs).square().mean())
        assert learner.params["weight"].item() == pytest.approx(0.6)
        xq, yq = torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[3.0]],
                                                                         dtype=torch.float64)
        (0.5 * (learner(xq) - yq).square().mean()).backward()
        grads[first_order] = net.weight.grad.item()
    assert grads[False] == pytest.approx(-1.44)
    assert grads[True] == pytest.approx(-2.4)
    assert grads[False] - grads[True] == pytest.approx(0.96)


@pytest.mark.parametrize("first_order", [False, True])
def test_batched_tasks_adapt_as_one_clone_per_task(first_order):
    net = _net()
    maml = MAML(net, lr=0.2, first_order=first_order)
    tasks = [(_data(10 + i), _data(20 + i)) for i in range(3)]
    # one clone per task
    for (xs, ys), (xq, yq) in tasks:
        learner = maml.clone()
        for _ in range(2):
            learner.adapt((learner(xs) - ys).square().mean())
        ((learner(xq) - yq).square().mean() / len(tasks)).backward()
    looped = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad()
    # all tasks at once
    xs = torch.stack([t[0][0] for t in tasks])
    ys = torch.stack([t[0][1] for t in tasks])
    xq = torch.stack([t[1][0] for t in tasks])
    yq = torch.stack([t[1][1] for t in tasks])
    params = expand_params(dict(net.named_parameters()), len(tasks))
    adapted = maml.adapt_batch(
        lambda p: (batched_call(net, p, xs) - ys).square().mean(dim=(1, 2)).sum(), params, 2)
    assert len(adapted) == 3
    (batched_call(net, adapted[-1], xq) - yq).square().mean(dim=(1, 2)).mean().backward()
    for k, p in net.named_parameters():
        torch.testing.assert_close(p.grad, looped[k], msg=k)


def test_meta_sgd_learns_one_step_size_per_parameter():
    net = _net()
    maml = MAML(net, lr=0.05, meta_sgd=True)
    assert len(list(maml.lrs.parameters())) == len(list(net.parameters()))
    (xs, ys), (xq, yq) = _data(4), _data(5)
    learner = maml.clone()
    learner.adapt((learner(xs) - ys).square().mean())
    (learner(xq) - yq).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in maml.lrs.parameters())
    # a step size of zero for a parameter leaves it where it was
    with torch.no_grad():
        for p in maml.lrs.parameters():
            p.zero_()
    learner = maml.clone()
    learner.adapt((learner(xs) - ys).square().mean())
    for name, p in net.named_parameters():
        torch.testing.assert_close(learner.params[name], p)


def test_adapt_returns_every_step_and_keeps_unused_parameters():
    net = nn.ModuleDict({"used": nn.Linear(1, 1), "unused": nn.Linear(1, 1)})
    params = dict(net.named_parameters())
    x = torch.ones(4, 1)
    steps = adapt(lambda p: functional_call(net["used"], {k[5:]: v for k, v in p.items()
                                                          if k.startswith("used.")},
                                            (x,)).square().mean(), params, 3, 0.1)
    assert len(steps) == 4
    assert steps[-1]["unused.weight"] is params["unused.weight"]
    assert not torch.equal(steps[-1]["used.weight"], params["used.weight"])
