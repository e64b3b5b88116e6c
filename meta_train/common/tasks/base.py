"""The task interface the meta-learning methods share.

A task family (sinusoids, N-way K-shot glyph classes, the pusher's dynamics) samples batches
of tasks, each a support set (what a learner adapts on) and a query set (what it is scored
on), builds the learner's model, scores predictions, and evaluates any adapter on a fixed,
seeded set of test tasks. An *adapter* is what a method contributes at test time: given a
batch of tasks and a list of step counts, the query predictions after that many adaptation
steps (methods that do not take steps return the same prediction for every count).

Evaluations keep one value per test task (or episode) for every metric, so that two methods
evaluated on the same task set -- same :meth:`MetaTask.fingerprint` -- compare task by task.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


@dataclass
class TaskBatch:
    """``B`` tasks: each input is a tuple of tensors ``[B, n, ...]`` (the model's arguments).

    Attributes:
        support_x, support_y: what the learner adapts on.
        query_x, query_y: what it is scored on.
        context: ``[B, c]`` the tasks' true parameters where known (an oracle's input).
    """

    support_x: tuple[torch.Tensor, ...]
    support_y: torch.Tensor
    query_x: tuple[torch.Tensor, ...]
    query_y: torch.Tensor
    context: torch.Tensor | None = None

    @property
    def tasks(self) -> int:
        return self.support_y.shape[0]

    def to(self, device: torch.device | str) -> TaskBatch:
        t = lambda x: None if x is None else x.to(device)  # noqa: E731
        return TaskBatch(tuple(t(x) for x in self.support_x), t(self.support_y),
                         tuple(t(x) for x in self.query_x), t(self.query_y), t(self.context))

    def slice(self, index: slice) -> TaskBatch:
        s = lambda x: None if x is None else x[index]  # noqa: E731
        return TaskBatch(tuple(s(x) for x in self.support_x), s(self.support_y),
                         tuple(s(x) for x in self.query_x), s(self.query_y), s(self.context))


Adapter = Callable[[TaskBatch, Sequence[int]], dict[int, torch.Tensor]]
"""``adapter(batch, steps) -> {step: query predictions [B, n_query, ...]}``."""


class MetaTask(ABC):
    """A family of tasks (see the module docstring).

    Args:
        cfg: the task's config dataclass (``config_cls``).
        device: where batches are made.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type]
    help: ClassVar[str]
    shape_keys: ClassVar[tuple[str, ...]] = ()
    """Config fields the learner's shapes depend on (``--resume`` keeps them)."""

    def __init__(self, cfg: Any, device: torch.device | str = "cpu") -> None:
        cfg.validate()
        self.cfg, self.device = cfg, torch.device(device)

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh learner (normalisers, where it has any, fitted to the training data)."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, tasks: int, split: str = "train") -> TaskBatch:
        """``tasks`` tasks of the meta-training stream (``train``) or of the validation pool
        (``val``)."""

    @abstractmethod
    def loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[B]``: each task's mean loss (what adaptation and meta-training minimise)."""

    def metrics(self, pred: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: [B]}`` scores of predictions (validation rows); the loss by default."""
        return {"loss": self.loss(pred, y)}

    @abstractmethod
    def evaluate(self, adapter: Adapter, final_step: int, batch: int = 100
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(summary, per_task)`` of ``adapter`` on the fixed test tasks: per-task metrics
        keyed by name, and their means with 95% intervals. ``final_step`` is the number of
        steps the method takes at test (the family may score other counts too)."""

    def describe(self, summary: dict[str, Any]) -> str:
        """A short text table of an evaluation's summary."""
        from meta_train.common.tasks.stats import fmt

        return "\n".join(f"{k:<40} {fmt(v)}" for k, v in summary["summary"].items())

    def fingerprint(self) -> str:
        """Identifies the test tasks (their config): equal fingerprints, paired tasks."""
        blob = json.dumps({"task": self.name, **self.eval_spec()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def eval_spec(self) -> dict[str, Any]:
        """The config fields that define the test tasks (default: the whole config)."""
        return asdict(self.cfg)

    @property
    def context_dim(self) -> int:
        """Size of :attr:`TaskBatch.context` (0: none)."""
        return 0


def summarize(per_task: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean and 95% interval of every per-task metric."""
    from meta_train.common.tasks.stats import mean_ci

    return {k: mean_ci(v) for k, v in per_task.items()}


def time_adaptation(adapter: Adapter, batch: TaskBatch, steps: int, repeats: int = 20) -> float:
    """Median wall time (ms) of adapting one task and predicting its query (one thread, as
    set by the caller), after two warm-up calls."""
    import time

    one = batch.slice(slice(0, 1))
    for _ in range(2):
        adapter(one, [steps])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        adapter(one, [steps])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)
