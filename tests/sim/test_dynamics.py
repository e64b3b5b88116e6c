"""Dynamics randomization: names, ranges, laws, normalisation, held-out sampling."""

import math

import numpy as np
import pytest

from sim.dynamics import DynamicsConfigError, DynamicsParam, peng_space

LINKS = ("l1", "l2")
JOINTS = ("j1", "j2")


@pytest.fixture
def space():
    return peng_space(LINKS, JOINTS)


def test_names_follow_peng_table(space):
    assert space.names[:2] == ["link_mass_scale/l1", "link_mass_scale/l2"]
    for name in (
        "puck_mass",
        "puck_friction",
        "puck_damping",
        "table_height",
        "action_timestep_rate",
        "obs_noise_frac",
        "joint_damping_scale/j2",
        "controller_gain_scale/j1",
    ):
        assert name in space.names
    assert space.dim == 2 + 2 + 2 + 6


def test_samples_within_training_ranges_and_log_uniform(space):
    rng = np.random.default_rng(0)
    mus = np.array([space.sample(rng) for _ in range(4000)])
    assert np.all(mus >= space.train_low) and np.all(mus <= space.train_high)
    i = space.index("puck_friction")  # log-uniform on [0.1, 5]: log-mean is the midpoint
    assert abs(np.log(mus[:, i]).mean() - 0.5 * (math.log(0.1) + math.log(5))) < 0.05
    j = space.index("puck_mass")  # uniform on [0.1, 0.4]
    assert abs(mus[:, j].mean() - 0.25) < 0.01


def test_normalise_roundtrip_and_bounds(space):
    rng = np.random.default_rng(1)
    mus = np.array([space.sample(rng) for _ in range(200)])
    norm = space.normalise(mus)
    assert np.all(norm >= -1 - 1e-9) and np.all(norm <= 1 + 1e-9)
    np.testing.assert_allclose(space.denormalise(norm), mus, rtol=1e-9)


def test_heldout_samples_lie_outside_training_ranges(space):
    held = space.heldout()
    rng = np.random.default_rng(2)
    mus = np.array([held.sample(rng) for _ in range(500)])
    low, high = space.train_low, space.train_high
    varied = low < high
    outside = (mus <= low + 1e-12) | (mus >= high - 1e-12)
    assert np.all(outside[:, varied])
    assert np.all(mus[:, space.index("puck_mass")] > 0)
    # normalised values beyond [-1, 1]: this is what an OOD detector must flag
    assert np.all(np.abs(space.normalise(mus)[:, varied]) >= 1 - 1e-9)


def test_without_randomization_returns_nominal(space):
    fixed = space.without_randomization()
    np.testing.assert_array_equal(fixed.sample(np.random.default_rng(0)), space.nominal)


def test_with_ranges_and_fixed(space):
    s = space.with_ranges({"puck_mass": (0.2, 0.3), "link_mass_scale": (1.0, 2.0)})
    assert s.params[s.index("puck_mass")].low == 0.2
    assert all(s.params[s.index(f"link_mass_scale/{n}")].high == 2.0 for n in LINKS)
    f = space.fixed(["puck_friction"])
    p = f.params[f.index("puck_friction")]
    assert p.low == p.high == p.nominal


@pytest.mark.parametrize(
    "make",
    [
        lambda s: s.with_ranges({"no_such_param": (0, 1)}),
        lambda s: s.with_ranges({"puck_mass": (0.4, 0.1)}),
        lambda s: s.with_ranges({"puck_mass": (0.1,)}),
        lambda s: s.with_ranges({"puck_friction": (-1.0, 2.0)}),
        lambda s: s.index("nope"),
        lambda s: s.normalise(np.zeros(3)),
        lambda s: s.heldout(0.5),
    ],
)
def test_bad_configuration_raises_clear_error(space, make):
    with pytest.raises(DynamicsConfigError):
        make(space)


def test_param_rejects_unknown_law():
    with pytest.raises(DynamicsConfigError, match="unknown law"):
        DynamicsParam("x", 0, 1, "gaussian", 0.5)
