"""Tests for meta_train.common.networks: shapes, memory, mu usage, normalisation, devices."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from meta_train.common.networks import (
    DynamicsEstimator,
    FeedforwardActor,
    FeedforwardCritic,
    RecurrentActor,
    RecurrentCritic,
    RunningNorm,
    gaussian_nll,
)

OBS, GOAL, ACT, MU, H = 6, 3, 2, 4, 16
B, T = 3, 5
SCALE = [0.5, 1.5]

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available"),
    ),
]


def _inputs(device: str = "cpu", seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = {"obs": OBS, "goal": GOAL, "action": ACT, "prev_action": ACT, "mu": MU}
    return {k: torch.randn(B, T, d, generator=gen).to(device) for k, d in shapes.items()}


@pytest.mark.parametrize("device", DEVICES)
def test_shapes_and_devices(device: str) -> None:
    torch.manual_seed(0)
    x = _inputs(device)
    actor = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H).to(device)
    a, (h, c) = actor(x["obs"], x["goal"], x["prev_action"])
    assert a.shape == (B, T, ACT) and h.shape == c.shape == (1, B, H)
    assert a.device.type == device and actor.action_scale.device.type == device
    a2, state = FeedforwardActor(OBS, GOAL, ACT, SCALE, hidden=H).to(device)(x["obs"], x["goal"])
    assert a2.shape == (B, T, ACT) and state is None
    critic = RecurrentCritic(OBS, GOAL, ACT, MU, hidden=H).to(device)
    q, (h, c) = critic(x["obs"], x["goal"], x["action"], x["prev_action"], x["mu"])
    assert q.shape == (B, T, 1) and h.shape == (1, B, H)
    q2, state = FeedforwardCritic(OBS, GOAL, ACT, MU, hidden=H).to(device)(
        x["obs"], x["goal"], x["action"], x["prev_action"], x["mu"]
    )
    assert q2.shape == (B, T, 1) and state is None
    est = DynamicsEstimator(OBS, ACT, MU, hidden=H).to(device)
    mean, logvar, (h, c) = est(x["obs"], x["prev_action"])
    assert mean.shape == logvar.shape == (B, T, MU) and h.shape == (1, B, H)
    assert mean.device.type == device
    norm = RunningNorm(OBS).to(device)
    norm.update(x["obs"])
    assert norm.mean.device.type == device and float(norm.count) == B * T


def test_actions_bounded_by_scale() -> None:
    torch.manual_seed(0)
    x = _inputs()
    scale = torch.tensor(SCALE)
    for actor in (
        RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H),
        FeedforwardActor(OBS, GOAL, ACT, SCALE, hidden=H),
    ):
        with torch.no_grad():
            actor.out.weight.mul_(1e3)  # drive tanh into saturation
        a, _ = actor(x["obs"] * 100, x["goal"], x["prev_action"])
        assert torch.all(a.abs() <= scale)
        assert torch.any(a.abs() > 0.99 * scale)


def test_recurrent_actor_remembers_and_feedforward_does_not() -> None:
    torch.manual_seed(0)
    x = _inputs()
    changed = x["obs"].clone()
    changed[:, 0] += 3.0  # only the first step differs
    rec = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H)
    ff = FeedforwardActor(OBS, GOAL, ACT, SCALE, hidden=H)
    with torch.no_grad():
        a_rec, _ = rec(x["obs"], x["goal"], x["prev_action"])
        b_rec, _ = rec(changed, x["goal"], x["prev_action"])
        a_ff, _ = ff(x["obs"], x["goal"], x["prev_action"])
        b_ff, _ = ff(changed, x["goal"], x["prev_action"])
    assert (a_rec[:, -1] - b_rec[:, -1]).abs().max() > 1e-6
    assert torch.equal(a_ff[:, 1:], b_ff[:, 1:])


def test_recurrent_actor_state_carries_across_calls() -> None:
    torch.manual_seed(0)
    x = _inputs()
    actor = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H)
    with torch.no_grad():
        full, _ = actor(x["obs"], x["goal"], x["prev_action"])
        state = actor.initial_state(B)
        steps = []
        for t in range(T):
            a, state = actor(
                x["obs"][:, t : t + 1],
                x["goal"][:, t : t + 1],
                x["prev_action"][:, t : t + 1],
                state,
            )
            steps.append(a)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-6)


def test_actor_has_no_mu_input() -> None:
    for cls in (RecurrentActor, FeedforwardActor):
        assert "mu" not in inspect.signature(cls.forward).parameters
        assert "mu" not in inspect.signature(cls.__init__).parameters


@pytest.mark.parametrize("cls", [RecurrentCritic, FeedforwardCritic])
def test_critic_uses_mu_only_when_omniscient(cls: type) -> None:
    torch.manual_seed(0)
    x = _inputs()
    critic = cls(OBS, GOAL, ACT, MU, hidden=H)
    with torch.no_grad():
        q1, _ = critic(x["obs"], x["goal"], x["action"], x["prev_action"], x["mu"])
        q2, _ = critic(x["obs"], x["goal"], x["action"], x["prev_action"], x["mu"] + 1.0)
    assert (q1 - q2).abs().max() > 1e-6
    with pytest.raises(ValueError, match="mu"):
        critic(x["obs"], x["goal"], x["action"], x["prev_action"], None)
    blind = cls(OBS, GOAL, ACT, 0, hidden=H)
    with torch.no_grad():
        q3, _ = blind(x["obs"], x["goal"], x["action"], x["prev_action"], x["mu"])
        q4, _ = blind(x["obs"], x["goal"], x["action"], x["prev_action"], None)
    assert torch.equal(q3, q4)


def test_critic_uses_action() -> None:
    torch.manual_seed(0)
    x = _inputs()
    critic = RecurrentCritic(OBS, GOAL, ACT, MU, hidden=H)
    with torch.no_grad():
        q1, _ = critic(x["obs"], x["goal"], x["action"], x["prev_action"], x["mu"])
        q2, _ = critic(x["obs"], x["goal"], x["action"] + 0.5, x["prev_action"], x["mu"])
    assert (q1 - q2).abs().max() > 1e-6


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    x = _inputs()
    modules = {
        "actor": (RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H), ("obs", "goal", "prev_action")),
        "ff_actor": (FeedforwardActor(OBS, GOAL, ACT, SCALE, hidden=H), ("obs", "goal")),
        "critic": (
            RecurrentCritic(OBS, GOAL, ACT, MU, hidden=H),
            ("obs", "goal", "action", "prev_action", "mu"),
        ),
        "estimator": (DynamicsEstimator(OBS, ACT, MU, hidden=H), ("obs", "prev_action")),
    }
    for name, (module, args) in modules.items():
        out = module(*(x[a] for a in args))
        loss = out[0].square().sum() + (out[1].square().sum() if name == "estimator" else 0)
        loss.backward()
        missing = [
            n for n, p in module.named_parameters() if p.grad is None or p.grad.abs().sum() == 0
        ]
        assert not missing, f"{name}: no gradient for {missing}"


def test_running_norm_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(loc=[1.0, -2.0, 30.0], scale=[0.1, 2.0, 7.0], size=(1000, 3))
    norm = RunningNorm(3)
    start = 0
    for size in (1, 7, 100, 392, 500):  # uneven chunks exercise the parallel merge
        norm.update(torch.as_tensor(data[start : start + size], dtype=torch.float32))
        start += size
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), data.var(axis=0), rtol=1e-4)
    assert float(norm.count) == 1000
    x = torch.as_tensor(data[:10], dtype=torch.float32)
    expected = np.clip((data[:10] - data.mean(0)) / np.sqrt(data.var(0) + norm.eps), -5, 5)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    far = torch.tensor([[1e3, -1e3, 30.0]])
    assert norm(far)[0, :2].tolist() == [5.0, -5.0]
    norm2 = RunningNorm(3)
    norm2.load_state_dict(norm.state_dict())
    assert torch.equal(norm2.mean, norm.mean) and torch.equal(norm2.count, norm.count)


def test_sync_norms_from_actor() -> None:
    actor = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H)
    critic = RecurrentCritic(OBS, GOAL, ACT, MU, hidden=H)
    actor.obs_norm.update(torch.randn(50, OBS) * 3 + 1)
    actor.goal_norm.update(torch.randn(50, GOAL) + 2)
    critic.sync_norms_from(actor)
    assert torch.equal(critic.obs_norm.mean, actor.obs_norm.mean)
    assert torch.equal(critic.goal_norm.var, actor.goal_norm.var)
    actor.obs_norm.update(torch.randn(5, OBS))
    assert not torch.equal(critic.obs_norm.mean, actor.obs_norm.mean)  # a copy, not shared


def test_estimator_logvar_bounded_and_nll_matches_torch() -> None:
    torch.manual_seed(0)
    x = _inputs()
    est = DynamicsEstimator(OBS, ACT, MU, hidden=H, logvar_min=-6.0, logvar_max=1.0)
    with torch.no_grad():
        est.out.weight.mul_(1e3)
        _, logvar, _ = est(x["obs"] * 10, x["prev_action"])
    assert logvar.min() >= -6.0 and logvar.max() <= 1.0 + np.log1p(np.exp(-7.0)) + 1e-5
    mean, logvar, target = torch.randn(3, 4, 5).unbind(0)
    ref = torch.nn.functional.gaussian_nll_loss(mean, target, logvar.exp(), eps=0.0)
    torch.testing.assert_close(gaussian_nll(mean, logvar, target), ref)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="action_scale"):
        RecurrentActor(OBS, GOAL, ACT, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="action_scale"):
        FeedforwardActor(OBS, GOAL, ACT, 0.0)
    with pytest.raises(ValueError, match="last dim"):
        RunningNorm(3).update(torch.zeros(4, 2))
