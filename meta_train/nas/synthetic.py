"""A synthetic objective with a known optimum, for checking and comparing samplers cheaply.

A target string is drawn from the search space itself (``target_seed``). A string scores, over
the decisions active in it or in the target (in the space's order), the mean of a credit per
decision plus ``pair_weight`` per pair of neighbouring decisions that both match exactly::

    credit = 1 - |i - j| / (n - 1)   ordered numeric choices (partial credit by distance)
             [x == t]                other choices and skip connections
             1 - |x - t| / range     continuous decisions (log scale for log ranges)
             0                       active in one string only

    score = (sum credit + pair_weight * sum [d and d+1 match]) / (N + pair_weight * (N - 1))

The target scores exactly 1 and every other string less, so the optimum is known whatever the
space. The pair terms reward getting neighbouring decisions right together, which a sampler
that models decisions one by one (TPE, independent) sees only partly. ``noise_std`` adds
Gaussian noise seeded by the string (the same string always scores the same, like a trainer
with a fixed seed); ``steps`` > 0 reports a learning curve that rises linearly to the score,
for pruners; ``delay_s`` stands in for training time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meta_train.common.config import ConfigError, build_config
from meta_train.common.config import option as _f
from meta_train.common.objectives import Reporter
from meta_train.nas.space import Decision, SearchSpace, index_of


@dataclass
class SyntheticConfig:
    """A planted-target objective over a search space (maximised; optimum 1)."""

    search_space: dict = _f({}, "the space whose strings are scored (the search fills it in)")
    target_seed: int = _f(0, "seed of the target string, drawn from the space")
    pair_weight: float = _f(1.0, "weight of each pair of neighbouring decisions that match")
    noise_std: float = _f(0.0, "std of Gaussian noise on the score, seeded by the string")
    steps: int = _f(0, "intermediate values reported (0: none)")
    delay_s: float = _f(0.0, "seconds each evaluation sleeps, spread over its steps (stands in "
                        "for training time in tests and in the workers' throughput benchmark)")

    def validate(self) -> None:
        if not self.search_space:
            raise ConfigError("search_space is empty")
        if min(self.pair_weight, self.noise_std, self.steps, self.delay_s) < 0:
            raise ConfigError("pair_weight, noise_std, steps and delay_s must be >= 0")


def _numeric(d: Decision) -> bool:
    return len(d.choices) > 1 and all(isinstance(c, int | float) and not isinstance(c, bool)
                                      for c in d.choices)


def credit(d: Decision, x: Any, t: Any) -> float:
    """A decision's credit in [0, 1] for value ``x`` against the target's ``t``."""
    if d.discrete:
        i, j = index_of(d.choices, x), index_of(d.choices, t)
        if i is None or j is None:
            return 0.0
        if _numeric(d):
            return 1.0 - abs(i - j) / (len(d.choices) - 1)
        return float(i == j)
    f = math.log if d.log else float
    return max(0.0, 1.0 - abs(f(x) - f(t)) / (f(d.high) - f(d.low)))


def target(space: SearchSpace, seed: int) -> dict[str, Any]:
    """The planted optimum."""
    return space.sample_uniform(np.random.default_rng(seed))


def score(space: SearchSpace, params: Mapping[str, Any], goal: Mapping[str, Any],
          pair_weight: float = 1.0) -> float:
    """The noise-free score of ``params`` (1 exactly at ``goal``)."""
    names = [d.name for d in space.decisions if d.name in params or d.name in goal]
    if not names:
        return 0.0
    credits = [credit(space.by_name[n], params[n], goal[n]) if n in params and n in goal
               else 0.0 for n in names]
    pairs = sum(float(a == 1.0 and b == 1.0) for a, b in zip(credits, credits[1:],
                                                              strict=False))
    n = len(names)
    return (sum(credits) + pair_weight * pairs) / (n + pair_weight * (n - 1))


def check(values: Mapping[str, Any]) -> SyntheticConfig:
    known = {f.name for f in dataclasses.fields(SyntheticConfig)}
    cfg = build_config(SyntheticConfig, {k: v for k, v in values.items() if k in known})
    SearchSpace.from_mapping(cfg.search_space)
    return cfg


def evaluate(values: dict[str, Any], report: Reporter, workdir: Path) -> float:
    """The score of the decisions in ``values``."""
    cfg = check(values)
    space = SearchSpace.from_mapping(cfg.search_space)
    params = space.flatten(values)
    value = score(space, params, target(space, cfg.target_seed), cfg.pair_weight)
    if cfg.noise_std > 0:
        key = json.dumps(params, sort_keys=True, default=str).encode()
        seed = int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
        value += float(np.random.default_rng([cfg.target_seed, seed]).normal(0, cfg.noise_std))
    for s in range(cfg.steps):
        time.sleep(cfg.delay_s / cfg.steps)
        report(s, value * (s + 1) / cfg.steps)
    if not cfg.steps:
        time.sleep(cfg.delay_s)
    return value
