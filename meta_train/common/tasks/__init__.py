"""Task families the meta-learning methods are trained and compared on, one module each:
``sinusoid`` (MAML's regression), ``fewshot`` (N-way K-shot classification of generated glyphs
or Omniglot) and ``pusher-dynamics`` (adapting a dynamics model of the pusher arm to the last
M transitions, as GrBAL and ReBAL do). :data:`TASKS` maps each command name to its class."""

from __future__ import annotations

from meta_train.common.tasks.base import Adapter, MetaTask, TaskBatch
from meta_train.common.tasks.fewshot import FewShotTask
from meta_train.common.tasks.pusher_dynamics import PusherDynamicsTask
from meta_train.common.tasks.sinusoid import SinusoidTask

TASKS: dict[str, type[MetaTask]] = {
    SinusoidTask.name: SinusoidTask,
    FewShotTask.name: FewShotTask,
    PusherDynamicsTask.name: PusherDynamicsTask,
}

__all__ = ["TASKS", "Adapter", "MetaTask", "TaskBatch", "make_task"]


def make_task(name: str, cfg, device="cpu") -> MetaTask:
    """The task family ``name`` with its config."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name](cfg, device)
