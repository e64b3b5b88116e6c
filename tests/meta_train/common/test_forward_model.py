"""The forward-model block learns a known system, uses its context, and adapts by plain
gradient steps through torch.func."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from meta_train.common.forward_model import ForwardModel


def _system(n: int, gain: torch.Tensor, gen: torch.Generator):
    """s' = s + gain * a + 0.1 * s  (per-sample gain: the 'dynamics')."""
    s = torch.randn(n, 4, generator=gen)
    a = torch.rand(n, 2, generator=gen) * 2 - 1
    s2 = s + 0.1 * s + torch.cat([a, a], -1) * gain
    return s, a, s2


def _fit(model: ForwardModel, s, a, s2, ctx=None, steps=600) -> float:
    model.update_normalizers(s, s2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model.loss(s, a, s2, ctx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(model.loss(s, a, s2, ctx))


def test_it_learns_a_system_and_predicts_in_observation_units():
    gen = torch.Generator().manual_seed(0)
    s, a, s2 = _system(512, torch.tensor(0.5), gen)
    torch.manual_seed(0)
    model = ForwardModel(4, 2, hidden=64)
    assert _fit(model, s, a, s2) < 0.01
    ts, ta, ts2 = _system(128, torch.tensor(0.5), gen)
    err = (model(ts, ta) - ts2).abs().mean()
    assert err < 0.1 * (ts2 - ts).abs().mean()


def test_a_context_lets_one_model_cover_several_dynamics():
    gen = torch.Generator().manual_seed(1)
    gain = torch.rand(1024, 1, generator=gen) * 2
    s, a, s2 = _system(1024, gain, gen)
    torch.manual_seed(0)
    blind = _fit(ForwardModel(4, 2, hidden=64), s, a, s2)
    torch.manual_seed(0)
    informed = _fit(ForwardModel(4, 2, hidden=64, context_dim=1), s, a, s2, gain)
    assert informed < 0.3 * blind
    with pytest.raises(ValueError, match="context"):
        ForwardModel(4, 2, context_dim=1)(s, a)
    with pytest.raises(ValueError, match="no context"):
        ForwardModel(4, 2)(s, a, gain)


def test_gradient_steps_on_new_transitions_adapt_it_functionally():
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(0)
    model = ForwardModel(4, 2, hidden=32)
    _fit(model, *_system(512, torch.tensor(0.5), gen), steps=300)
    s, a, s2 = _system(64, torch.tensor(1.5), gen)  # other dynamics
    params = dict(model.named_parameters())
    before = functional_call(model, params, (s, a))
    for _ in range(100):
        pred = functional_call(model, params, (s, a))
        loss = (pred - s2).square().mean()
        grads = torch.autograd.grad(loss, list(params.values()))
        params = {k: p - 0.1 * g for (k, p), g in zip(params.items(), grads, strict=True)}
    after = functional_call(model, params, (s, a))
    assert (after - s2).square().mean() < 0.5 * (before - s2).square().mean()
