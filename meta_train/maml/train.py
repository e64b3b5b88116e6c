"""Meta-train a MAML learner on a task family, then evaluate it on the family's test tasks.

    meta-train maml sinusoid                   # the paper's setting (presets/sinusoid.yaml)
    meta-train maml sinusoid --first-order     # first-order MAML
    meta-train maml pusher-dynamics --meta-sgd

Each meta-iteration samples ``meta_batch`` tasks, takes ``inner_steps`` gradient steps on each
task's support set (all tasks at once, parameters batched over tasks) and steps Adam on the
mean of the query losses at the adapted parameters (Finn et al. 2017, Algorithm 2). At the end
the learner adapts to each test task with ``eval_steps`` steps (and the task's curve points)
and the results go to ``<run>/results.json`` and ``per_task.npz``.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from meta_train.common.meta_learning import (
    MetaRun,
    meta_update,
    resolve_run_device,
    sgd_adapter,
)
from meta_train.common.tasks import MetaTask, make_task
from meta_train.maml.config import MAMLConfig
from meta_train.maml.maml import MAML


def make_adapter(maml: MAML, task: MetaTask):
    """The test-time adapter: plain gradient steps from the meta-parameters with the inner
    step size(s) (no graph kept), query predictions after each requested count."""
    return sgd_adapter(maml.module, task.loss, maml.step_sizes)


def validation(task: MetaTask, adapter, cfg, steps: int):
    """Scores of the fixed validation tasks after ``steps`` steps."""

    def validate() -> dict[str, float]:
        batch = task.sample(np.random.default_rng([cfg.seed, 99]), cfg.val_tasks, "val")
        pred = adapter(batch, [steps])[steps]
        return {k: float(v.mean()) for k, v in task.metrics(pred, batch.query_y).items()}

    return validate


def train_maml(task_name: str, cfg: MAMLConfig, task_cfg, resume: bool = False,
               command: str = "") -> dict:
    """Meta-train (or resume) and evaluate; returns the results."""
    device = resolve_run_device(cfg)
    task = make_task(task_name, task_cfg, device)
    torch.manual_seed(cfg.seed)
    maml = MAML(task.build_model(), cfg.inner_lr, cfg.first_order, cfg.meta_sgd).to(device)
    opt = torch.optim.Adam(maml.parameters(), lr=cfg.meta_lr)
    run = MetaRun(cfg.method_name, task_name, cfg, task_cfg, {"maml": maml}, opt, resume,
                  shape_keys=("meta_sgd", *task.shape_keys), command=command)
    print(f"run: {run.run_dir}  device: {device}  parameters: "
          f"{sum(p.numel() for p in maml.module.parameters())}", file=sys.stderr)
    adapter = make_adapter(maml, task)

    def step() -> dict[str, float]:
        batch = task.sample(run.rng, cfg.meta_batch)
        params = maml.batched_params(batch.tasks)

        def support_loss(p):
            return task.loss(maml.call_batched(p, *batch.support_x), batch.support_y).sum()

        adapted = maml.adapt_batch(support_loss, params, cfg.inner_steps)[-1]
        query = task.loss(maml.call_batched(adapted, *batch.query_x), batch.query_y).mean()
        meta_update(opt, query, maml.parameters(), cfg.meta_grad_clip)
        return {"query_loss": query.item()}

    run.train(step, validation(task, adapter, cfg, cfg.eval_steps))
    summary, per_task = task.evaluate(adapter, cfg.eval_steps, batch=cfg.eval_batch)
    results = {"methods": {cfg.method_name: summary}, "fingerprint": task.fingerprint()}
    run.write_results(results, {f"{cfg.method_name}/{k}": v for k, v in per_task.items()})
    print(task.describe(summary), file=sys.stderr)
    print(f"wrote {run.run_dir / 'results.json'}", file=sys.stderr)
    return results
