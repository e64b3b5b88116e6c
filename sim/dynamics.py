"""Dynamics randomization: named parameters, ranges, sampling laws and the vector mu.

Peng et al. 2017 (Table I) randomize link masses, joint damping, puck mass, friction and damping,
table height, controller gains, the action timestep and observation noise. Each parameter here has
a name, a training range, a sampling law (``log_uniform`` where Peng uses it) and units. A sample
is a vector ``mu`` (physical values) with a normalised form in [-1, 1] over the training range
(in log space for log-uniform parameters), which the omniscient critic and the estimators use.

Held-out ranges for out-of-distribution evaluation lie *outside* the training range: each value is
drawn from the band just below or just above it (see :meth:`DynamicsSpace.heldout`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

LAWS = ("uniform", "log_uniform")


class DynamicsConfigError(ValueError):
    """A dynamics parameter or range was specified wrongly (unknown name, inverted range...)."""


@dataclass(frozen=True)
class DynamicsParam:
    """One randomized scalar.

    Attributes:
        name: unique name, ``group/element`` for per-link or per-joint parameters.
        low, high: training range (inclusive), in ``units``.
        law: ``uniform`` or ``log_uniform``.
        nominal: value used when randomization is off.
        units: physical units or ``x default`` for scale factors.
        floor: lower bound on held-out samples for parameters that must stay positive
            (held-out bands themselves are derived by :meth:`DynamicsSpace.heldout`).
    """

    name: str
    low: float
    high: float
    law: str
    nominal: float
    units: str = ""
    floor: float | None = None

    def __post_init__(self) -> None:
        if self.law not in LAWS:
            raise DynamicsConfigError(f"{self.name}: unknown law {self.law!r}, expected {LAWS}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise DynamicsConfigError(f"{self.name}: range must be finite, got {self}")
        if self.low > self.high:
            raise DynamicsConfigError(
                f"{self.name}: inverted range [{self.low}, {self.high}] (low > high)"
            )
        if self.law == "log_uniform" and self.low <= 0:
            raise DynamicsConfigError(
                f"{self.name}: log_uniform range must be > 0, got {self.low}"
            )

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one value from the training range."""
        if self.law == "log_uniform":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def normalise(self, value: float | np.ndarray) -> float | np.ndarray:
        """Map a physical value to [-1, 1] over the training range (log space if log-uniform)."""
        if self.high == self.low:
            return np.zeros_like(value) if isinstance(value, np.ndarray) else 0.0
        if self.law == "log_uniform":
            lo, hi, v = math.log(self.low), math.log(self.high), np.log(value)
        else:
            lo, hi, v = self.low, self.high, value
        return 2.0 * (v - lo) / (hi - lo) - 1.0

    def denormalise(self, value: float | np.ndarray) -> float | np.ndarray:
        """Inverse of :meth:`normalise`."""
        if self.law == "log_uniform":
            lo, hi = math.log(self.low), math.log(self.high)
            return np.exp(lo + (np.asarray(value) + 1.0) * 0.5 * (hi - lo))
        return self.low + (np.asarray(value) + 1.0) * 0.5 * (self.high - self.low)


@dataclass(frozen=True)
class DynamicsSpace:
    """An ordered set of randomized parameters; samples are vectors in this order.

    Attributes:
        params: the parameters, in mu order.
        randomize: when False, :meth:`sample` returns the nominal values.
        mode: ``train`` samples the training ranges, ``heldout`` the bands outside them.
        heldout_factor: width of the held-out bands (ratio for log-uniform, fraction of the
            range width for uniform parameters).
    """

    params: tuple[DynamicsParam, ...]
    randomize: bool = True
    mode: str = "train"
    heldout_factor: float = 1.5
    _index: Mapping[str, int] = field(default=None, repr=False, compare=False)  # type: ignore

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise DynamicsConfigError(f"duplicate parameter names in {names}")
        if self.mode not in ("train", "heldout"):
            raise DynamicsConfigError(f"mode must be 'train' or 'heldout', got {self.mode!r}")
        if not self.heldout_factor > 1.0:
            raise DynamicsConfigError(f"heldout_factor must be > 1, got {self.heldout_factor}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    # --- description --------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Parameter names in mu order."""
        return [p.name for p in self.params]

    @property
    def dim(self) -> int:
        """Length of mu."""
        return len(self.params)

    def index(self, name: str) -> int:
        """Position of a parameter in mu; unknown names raise :class:`DynamicsConfigError`."""
        try:
            return self._index[name]
        except KeyError:
            raise DynamicsConfigError(
                f"unknown dynamics parameter {name!r}; known: {', '.join(self.names)}"
            ) from None

    @property
    def nominal(self) -> np.ndarray:
        """Nominal values in mu order."""
        return np.array([p.nominal for p in self.params])

    @property
    def train_low(self) -> np.ndarray:
        return np.array([p.low for p in self.params])

    @property
    def train_high(self) -> np.ndarray:
        return np.array([p.high for p in self.params])

    # --- variants -----------------------------------------------------------------------------
    def with_ranges(self, overrides: Mapping[str, Sequence[float]]) -> DynamicsSpace:
        """Copy with some training ranges replaced: ``{"puck_mass": (0.1, 0.2)}``.

        A group prefix (``"link_mass_scale"``) applies to every member of the group.
        """
        new = list(self.params)
        for key, rng in overrides.items():
            if len(rng) != 2:
                raise DynamicsConfigError(f"range for {key!r} must be (low, high), got {rng}")
            for i in self._members(key):
                new[i] = replace(new[i], low=float(rng[0]), high=float(rng[1]))
        return replace(self, params=tuple(new))

    def _members(self, key: str) -> list[int]:
        """Positions of the parameter ``key`` or of every member of the group ``key``."""
        hits = [i for i, p in enumerate(self.params)
                if p.name == key or p.name.startswith(key + "/")]
        if not hits:
            raise DynamicsConfigError(
                f"unknown dynamics parameter {key!r}; known: {', '.join(self.names)}"
            )
        return hits

    def fixed(self, names: Sequence[str]) -> DynamicsSpace:
        """Copy where the named parameters (or groups) stay at their nominal value."""
        return self.with_ranges({n: (self._nominal_of(n),) * 2 for n in names})

    def _nominal_of(self, key: str) -> float:
        for p in self.params:
            if p.name == key or p.name.startswith(key + "/"):
                return p.nominal
        raise DynamicsConfigError(f"unknown dynamics parameter {key!r}")

    def heldout(self, factor: float | None = None) -> DynamicsSpace:
        """Copy that samples outside the training ranges (for out-of-distribution evaluation)."""
        return replace(self, mode="heldout", heldout_factor=factor or self.heldout_factor)

    def heldout_band(self, name: str, side: str,
                     fraction: float = 1.0 / 3.0) -> tuple[float, float] | None:
        """The band just beyond one edge of a parameter's training range, as wide as
        ``fraction`` of the range in its sampling space (log space for log-uniform laws):
        ``side`` is ``below`` or ``above``. The parameter's physical floor cuts the band; a
        band the floor leaves empty is None. For out-of-distribution evaluation one parameter
        at a time (``PushEnv(sample_ranges={name: band})``, the others in range)."""
        if side not in ("below", "above"):
            raise DynamicsConfigError(f"side must be 'below' or 'above', got {side!r}")
        p = self.params[self.index(name)]
        if p.law == "log_uniform":
            width = math.log(p.high / p.low) * fraction
            lo, hi = ((p.low * math.exp(-width), p.low) if side == "below"
                      else (p.high, p.high * math.exp(width)))
        else:
            width = (p.high - p.low) * fraction
            lo, hi = (p.low - width, p.low) if side == "below" else (p.high, p.high + width)
        if p.floor is not None:
            lo = max(lo, p.floor)
        return (float(lo), float(hi)) if hi > lo and width > 0 else None

    def without_randomization(self) -> DynamicsSpace:
        """Copy that always returns nominal values."""
        return replace(self, randomize=False)

    # --- sampling -----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw one mu (physical values, mu order)."""
        if not self.randomize:
            return self.nominal
        if self.mode == "train":
            return np.array([p.sample(rng) for p in self.params])
        return np.array([self._sample_heldout(p, rng) for p in self.params])

    def _sample_heldout(self, p: DynamicsParam, rng: np.random.Generator) -> float:
        if p.low == p.high:
            return p.low
        f = self.heldout_factor
        below = rng.random() < 0.5
        if p.law == "log_uniform":
            lo, hi = (p.low / f, p.low) if below else (p.high, p.high * f)
            value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            w = (p.high - p.low) * (f - 1.0)
            lo, hi = (p.low - w, p.low) if below else (p.high, p.high + w)
            value = rng.uniform(lo, hi)
        if p.floor is not None:
            value = max(value, p.floor)
        return float(value)

    def normalise(self, mu: np.ndarray) -> np.ndarray:
        """Physical mu -> normalised mu in [-1, 1] over the training ranges."""
        mu = np.asarray(mu, dtype=np.float64)
        if mu.shape[-1] != self.dim:
            raise DynamicsConfigError(f"mu has {mu.shape[-1]} values, expected {self.dim}")
        return np.stack([p.normalise(mu[..., i]) for i, p in enumerate(self.params)], axis=-1)

    def denormalise(self, mu_norm: np.ndarray) -> np.ndarray:
        """Normalised mu -> physical values."""
        mu_norm = np.asarray(mu_norm, dtype=np.float64)
        return np.stack(
            [p.denormalise(mu_norm[..., i]) for i, p in enumerate(self.params)], axis=-1
        )


def peng_space(
    link_names: Sequence[str],
    joint_names: Sequence[str],
    table_height_m: tuple[float, float] = (0.73, 0.77),
    nominal_table_height_m: float = 0.75,
) -> DynamicsSpace:
    """The randomization of Peng et al. 2017, Table I, for a robot with these links and joints."""
    params: list[DynamicsParam] = []
    for link in link_names:
        params.append(
            DynamicsParam(f"link_mass_scale/{link}", 0.25, 4.0, "log_uniform", 1.0, "x default")
        )
    for joint in joint_names:
        params.append(
            DynamicsParam(
                f"joint_damping_scale/{joint}", 0.2, 20.0, "log_uniform", 1.0, "x default"
            )
        )
    for joint in joint_names:
        params.append(
            DynamicsParam(
                f"controller_gain_scale/{joint}", 0.5, 2.0, "log_uniform", 1.0, "x default"
            )
        )
    params += [
        DynamicsParam("puck_mass", 0.1, 0.4, "uniform", 0.25, "kg", floor=0.02),
        DynamicsParam("puck_friction", 0.1, 5.0, "log_uniform", 0.7, "coefficient"),
        DynamicsParam("puck_damping", 0.01, 0.2, "log_uniform", 0.05, "PyBullet linear damping"),
        DynamicsParam("table_height", *table_height_m, "uniform", nominal_table_height_m, "m"),
        DynamicsParam("action_timestep_rate", 125.0, 1000.0, "uniform", 1000.0, "1/s", floor=10.0),
        DynamicsParam("obs_noise_frac", 0.0, 0.05, "uniform", 0.0, "x feature scale", floor=0.0),
    ]
    return DynamicsSpace(tuple(params))
