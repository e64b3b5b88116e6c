"""Meta-train the Meta-LSTM optimiser on a task family, then evaluate it on the test tasks.

    meta-train meta-lstm sinusoid
    meta-train meta-lstm fewshot --preset fewshot-5shot

Each meta-iteration samples ``meta_batch`` tasks; from the learned initialisation ``c_0`` the
meta-learner takes ``updates`` steps, each reading the support loss and its gradient (computed
on a detached copy of the parameters: constants, no second derivatives); the query loss at the
last parameters back-propagates through the cell states into the meta-learner and ``c_0``
(Ravi & Larochelle 2017, Algorithm 1), and Adam steps on it (gradient norm clipped).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import torch

from meta_train.common.meta_learning import (
    MetaRun,
    batched_call,
    flatten,
    meta_update,
    resolve_run_device,
    unflatten,
)
from meta_train.common.tasks import MetaTask, TaskBatch, make_task
from meta_train.meta_lstm.config import MetaLSTMConfig
from meta_train.meta_lstm.optimizer import MetaLSTMOptimizer


class MetaLSTMLearner:
    """A learner model driven by a :class:`MetaLSTMOptimizer` on batched tasks.

    Args:
        model: the learner (its parameters' shapes; its buffers are used as they are).
        meta: the meta-learner whose ``c0`` has the model's size.
        task: the task family (its loss).
    """

    def __init__(self, model: torch.nn.Module, meta: MetaLSTMOptimizer, task: MetaTask) -> None:
        self.model, self.meta, self.task = model, meta, task
        self.like = {k: v.detach() for k, v in model.named_parameters()}

    def predict(self, theta: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        return batched_call(self.model, unflatten(theta, self.like), *inputs)

    def support_grad(self, theta: torch.Tensor, batch: TaskBatch
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each task's support loss ``[B]`` and its gradient ``[B, P]`` at ``theta``, both
        constants (computed on a detached copy)."""
        with torch.enable_grad():
            th = theta.detach().requires_grad_()
            loss = self.task.loss(self.predict(th, *batch.support_x), batch.support_y)
            (grad,) = torch.autograd.grad(loss.sum(), th)
        return loss.detach(), grad

    def unroll(self, batch: TaskBatch, steps: int, keep: Sequence[int] = ()
               ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """``steps`` updates from ``c_0``; returns the last parameters and those after each
        count in ``keep`` (0: the initialisation)."""
        theta, state = self.meta.initial(batch.tasks)
        kept = {0: theta} if 0 in keep else {}
        for t in range(steps):
            loss, grad = self.support_grad(theta, batch)
            theta, state = self.meta.step(theta, state, loss, grad)
            if t + 1 in keep:
                kept[t + 1] = theta
        return theta, kept

    def adapter(self, batch: TaskBatch, steps: Sequence[int]) -> dict[int, torch.Tensor]:
        """Query predictions after each count of updates (no graph kept)."""
        with torch.no_grad():
            _, kept = self.unroll(batch, max(steps), keep=set(steps))
            return {s: self.predict(kept[s], *batch.query_x) for s in steps}


def train_meta_lstm(task_name: str, cfg: MetaLSTMConfig, task_cfg, resume: bool = False,
                    command: str = "") -> dict:
    """Meta-train (or resume) and evaluate; returns the results."""
    device = resolve_run_device(cfg)
    task = make_task(task_name, task_cfg, device)
    torch.manual_seed(cfg.seed)
    model = task.build_model()
    init = flatten(dict(model.named_parameters()), batched=False)
    meta = MetaLSTMOptimizer(init, cfg.lstm_hidden, tuple(cfg.forget_bias),
                             tuple(cfg.input_bias), cfg.learn_init).to(device)
    model.requires_grad_(False)  # the learner's weights live in meta.c0 and theta
    learner = MetaLSTMLearner(model, meta, task)
    opt = torch.optim.Adam([p for p in meta.parameters() if p.requires_grad], lr=cfg.meta_lr)
    run = MetaRun(cfg.method_name, task_name, cfg, task_cfg,
                  {"meta_lstm": meta, "learner_buffers": model}, opt, resume,
                  shape_keys=("lstm_hidden", *task.shape_keys), command=command)
    print(f"run: {run.run_dir}  device: {device}  learner parameters: {meta.n_params}",
          file=sys.stderr)

    def step() -> dict[str, float]:
        batch = task.sample(run.rng, cfg.meta_batch)
        theta, _ = learner.unroll(batch, cfg.updates)
        query = task.loss(learner.predict(theta, *batch.query_x), batch.query_y).mean()
        meta_update(opt, query, meta.parameters(), cfg.meta_grad_clip)
        return {"query_loss": query.item()}

    def validate() -> dict[str, float]:
        batch = task.sample(np.random.default_rng([cfg.seed, 99]), cfg.val_tasks, "val")
        pred = learner.adapter(batch, [cfg.eval_steps])[cfg.eval_steps]
        return {k: float(v.mean()) for k, v in task.metrics(pred, batch.query_y).items()}

    run.train(step, validate)
    summary, per_task = task.evaluate(learner.adapter, cfg.eval_steps, batch=cfg.eval_batch)
    results = {"methods": {cfg.method_name: summary}, "fingerprint": task.fingerprint()}
    run.write_results(results, {f"{cfg.method_name}/{k}": v for k, v in per_task.items()})
    print(task.describe(summary), file=sys.stderr)
    print(f"wrote {run.run_dir / 'results.json'}", file=sys.stderr)
    return results
