"""Sinusoid regression, as in MAML (Finn et al. 2017, section 5.1).

A task is ``y = A sin(x - phi)`` with the amplitude ``A`` uniform in [0.1, 5] and the phase
``phi`` uniform in [0, pi]; inputs are uniform in [-5, 5]. The learner is an MLP of two
hidden layers of 40 ReLU units; meta-training uses K = 10 support points per task (and 10
query points). The evaluation adapts to K = 5 and K = 10 support points of each of the test
tasks and scores the mean squared error on 100 query points after every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from meta_train.common.config import ConfigError
from meta_train.common.config import option as _f
from meta_train.common.tasks.base import Adapter, MetaTask, TaskBatch, summarize


@dataclass
class SinusoidConfig:
    """Sinusoid regression tasks (MAML's)."""

    amplitude: list = _f([0.1, 5.0], "amplitude range [low, high]")
    phase: list = _f([0.0, math.pi], "phase range [low, high] (rad)")
    x_range: list = _f([-5.0, 5.0], "input range [low, high]")
    shots: int = _f(10, "K: support points per task in meta-training")
    query: int = _f(10, "query points per task in meta-training")
    hidden: int = _f(40, "learner: width of each hidden layer")
    layers: int = _f(2, "learner: hidden layers (ReLU)")
    eval_shots: list = _f([5, 10], "K of the evaluation (one curve each)")
    eval_query: int = _f(100, "query points per test task")
    eval_tasks: int = _f(600, "test tasks")
    eval_max_steps: int = _f(10, "adaptation steps of the evaluation curve (scored after each)")
    eval_seed: int = _f(20170309, "seed of the test tasks (never seen in training)")

    def validate(self) -> None:
        if min(self.shots, self.query, self.hidden, self.layers, self.eval_query,
               self.eval_tasks) < 1 or self.eval_max_steps < 0:
            raise ConfigError("sinusoid: sizes must be >= 1 and eval_max_steps >= 0")
        if not self.eval_shots or min(self.eval_shots) < 1:
            raise ConfigError("sinusoid: eval_shots must list K >= 1")
        for name in ("amplitude", "phase", "x_range"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ConfigError(f"sinusoid: {name} must be [low, high] with low < high")


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """``layers`` Linear -> ReLU blocks of width ``hidden``, then a linear output."""
    mods: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, out_dim))
    return nn.Sequential(*mods)


class SinusoidTask(MetaTask):
    """Sinusoid regression (see the module docstring)."""

    name = "sinusoid"
    config_cls = SinusoidConfig
    help = "sinusoid regression, as in MAML (amplitude [0.1, 5], phase [0, pi])"
    shape_keys = ("hidden", "layers")

    def build_model(self) -> nn.Module:
        return mlp(1, 1, self.cfg.hidden, self.cfg.layers).to(self.device)

    def draw(self, rng: np.random.Generator, tasks: int, shots: int,
             query: int) -> tuple[TaskBatch, np.ndarray]:
        """``tasks`` random sinusoids with ``shots`` support and ``query`` query points;
        also returns their (amplitude, phase) ``[tasks, 2]``."""
        c = self.cfg
        amp = rng.uniform(*c.amplitude, tasks)
        phase = rng.uniform(*c.phase, tasks)
        x = rng.uniform(*c.x_range, (tasks, shots + query, 1))
        y = amp[:, None, None] * np.sin(x - phase[:, None, None])
        t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        params = np.stack([amp, phase], 1)
        return TaskBatch((t(x[:, :shots]),), t(y[:, :shots]), (t(x[:, shots:]),),
                         t(y[:, shots:]), t(params)), params

    def sample(self, rng: np.random.Generator, tasks: int, split: str = "train") -> TaskBatch:
        return self.draw(rng, tasks, self.cfg.shots, self.cfg.query)[0]

    def loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (pred - y).square().mean(dim=tuple(range(1, pred.dim())))

    @property
    def context_dim(self) -> int:
        return 2

    def test_batches(self, shots: int):
        """The test tasks at ``shots`` (the same sinusoids and query points for every K)."""
        c = self.cfg
        rng = np.random.default_rng(c.eval_seed)
        amp = rng.uniform(*c.amplitude, c.eval_tasks)
        phase = rng.uniform(*c.phase, c.eval_tasks)
        xq = rng.uniform(*c.x_range, (c.eval_tasks, c.eval_query, 1))
        xs = np.random.default_rng([c.eval_seed, shots]).uniform(
            *c.x_range, (c.eval_tasks, shots, 1))
        f = lambda x: amp[:, None, None] * np.sin(x - phase[:, None, None])  # noqa: E731
        t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        return TaskBatch((t(xs),), t(f(xs)), (t(xq),), t(f(xq)),
                         t(np.stack([amp, phase], 1)))

    def evaluate(self, adapter: Adapter, final_step: int, batch: int = 100
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Mean squared error after 0 .. ``eval_max_steps`` steps (and ``final_step``), at
        every K of ``eval_shots``: metrics ``K<k>/step<s>``."""
        per_task: dict[str, np.ndarray] = {}
        steps = sorted(set(range(self.cfg.eval_max_steps + 1)) | {final_step})
        for shots in self.cfg.eval_shots:
            data = self.test_batches(shots)
            out = {s: [] for s in steps}
            for i in range(0, data.tasks, batch):
                b = data.slice(slice(i, i + batch))
                preds = adapter(b, steps)
                for s in steps:
                    out[s].append(self.loss(preds[s].detach(), b.query_y).cpu().numpy())
            for s in steps:
                per_task[f"K{shots}/step{s}"] = np.concatenate(out[s])
        return {"metric": "mse", "tasks": self.cfg.eval_tasks,
                "summary": summarize(per_task)}, per_task

    def eval_spec(self) -> dict[str, Any]:
        c = self.cfg
        return {"amplitude": c.amplitude, "phase": c.phase, "x_range": c.x_range,
                "eval_shots": c.eval_shots, "eval_query": c.eval_query,
                "eval_tasks": c.eval_tasks, "eval_seed": c.eval_seed}
