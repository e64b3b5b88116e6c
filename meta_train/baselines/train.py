"""Train and evaluate the baselines of a task family on its test tasks.

    meta-train baselines sinusoid          # pretrained on all tasks; it fine-tuned (step 0.01)
    meta-train baselines fewshot           # fine-tuned head on pretrained features; NCM
    meta-train baselines pusher-dynamics   # no adaptation, fine-tuning, ReBAL, oracle

* ``no-adaptation``: the learner trained on every task's data at once (the support and query
  of each task of the stream), used as it is.
* ``fine-tune``: that model adapted by plain gradient steps on each task's support set; the
  step size and count are the best on the validation tasks among ``finetune_lrs`` x
  ``finetune_steps`` (a single pair given, e.g. the MAML paper's step 0.01, is used as is).
  Few-shot: a network pre-trained to classify every training class, whose features feed a
  new ``ways``-way head trained by gradient steps on the support set.
* ``ncm``: few-shot, nearest class mean of those features.
* ``rebal``: pusher, :class:`~meta_train.baselines.models.RecurrentDynamics`.
* ``oracle``: pusher, the forward model given the true normalised dynamics ``mu``.

Each trained model is a sub-run of the run directory (``<run>/<model>/``: checkpoints,
progress, ``--resume``); the evaluation of all of them is ``<run>/results.json`` and
``per_task.npz``, in the format the methods write, for ``meta-train compare-adaptation``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from meta_train.baselines.config import BaselinesConfig
from meta_train.baselines.models import RecurrentDynamics
from meta_train.common.checkpoint import CheckpointError, latest_checkpoint
from meta_train.common.meta_learning import (
    MetaRun,
    meta_update,
    resolve_run_device,
    sgd_adapter,
    write_results_files,
)
from meta_train.common.runs import default_run_name
from meta_train.common.tasks import MetaTask, TaskBatch, make_task


def _sub_run(parent: Path, name: str, cfg: BaselinesConfig, task_name: str, task_cfg,
             modules: dict, opt, iterations: int, resume: bool, command: str) -> MetaRun:
    sub = dataclasses.replace(cfg, run_dir=str(parent), run_name=name, iterations=iterations)
    has = latest_checkpoint(parent / name) is not None
    return MetaRun(name, task_name, sub, task_cfg, modules, opt, resume=resume and has,
                   command=command)


def _val_batches(task: MetaTask, cfg: BaselinesConfig) -> list[TaskBatch]:
    rng = np.random.default_rng([cfg.seed, 99])
    return [task.sample(rng, cfg.val_tasks, "val") for _ in range(cfg.val_batches)]


def choose_finetuning(task: MetaTask, make_adapter, cfg: BaselinesConfig
                      ) -> tuple[float, int, dict[str, float]]:
    """The (step size, step count) with the lowest validation query loss, and every pair's
    loss (``"lr=<lr> steps=<n>"``)."""
    batches = _val_batches(task, cfg)
    steps = sorted(set(cfg.finetune_steps))
    table, best = {}, (float("inf"), None, None)
    for lr in cfg.finetune_lrs:
        adapter = make_adapter(lr)
        total = dict.fromkeys(steps, 0.0)
        for b in batches:
            preds = adapter(b, steps)
            for s in steps:
                total[s] += float(task.loss(preds[s], b.query_y).mean()) / len(batches)
        for s in steps:
            table[f"lr={lr} steps={s}"] = total[s]
            if total[s] < best[0]:
                best = (total[s], lr, s)
    return float(best[1]), int(best[2]), table


# --- regression tasks (sinusoid, pusher-dynamics) --------------------------------------------
def _joined(batch: TaskBatch) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Support and query of each task as one set (what a model of all tasks fits)."""
    x = tuple(torch.cat([s, q], dim=1) for s, q in zip(batch.support_x, batch.query_x,
                                                       strict=True))
    return x, torch.cat([batch.support_y, batch.query_y], dim=1)


def _context(batch: TaskBatch, n: int) -> torch.Tensor:
    return batch.context[:, None].expand(-1, n, -1)


def _fit(task: MetaTask, cfg: BaselinesConfig, parent: Path, name: str, model, forward,
         iterations: int, resume: bool, command: str, task_name: str) -> None:
    """Train ``model`` on the task stream (a sub-run ``<parent>/<name>``) to minimise the
    task's loss of ``forward(batch) -> (pred, y)``."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.meta_lr)
    run = _sub_run(parent, name, cfg, task_name, task.cfg, {name: model}, opt, iterations,
                   resume, command)

    def step() -> dict[str, float]:
        loss = task.loss(*forward(task.sample(run.rng, cfg.meta_batch))).mean()
        meta_update(opt, loss, model.parameters(), cfg.meta_grad_clip)
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        with torch.no_grad():
            batches = _val_batches(task, cfg)[:2]
            return {"loss": sum(float(task.loss(*forward(b)).mean()) for b in batches) / 2}

    run.train(step, validate)


def regression_baselines(task: MetaTask, cfg: BaselinesConfig, names: list[str],
                         parent: Path, resume: bool, command: str, task_name: str
                         ) -> dict[str, tuple[Any, int, dict[str, Any]]]:
    """``{name: (adapter, final step, extra info)}`` of the regression baselines."""
    out: dict[str, tuple[Any, int, dict[str, Any]]] = {}
    if {"no-adaptation", "fine-tune"} & set(names):
        torch.manual_seed(cfg.seed)
        model = task.build_model()

        def plain(b):
            x, y = _joined(b)
            return model(*x), y

        _fit(task, cfg, parent, "pretrained", model, plain, cfg.iterations, resume, command,
             task_name)
        model.eval()
        if "no-adaptation" in names:
            def still(batch, steps):
                with torch.no_grad():
                    pred = model(*batch.query_x)
                return dict.fromkeys(steps, pred)

            out["no-adaptation"] = (still, 0, {})
        if "fine-tune" in names:
            make = lambda lr: sgd_adapter(model, task.loss, lr)  # noqa: E731
            lr, steps, table = choose_finetuning(task, make, cfg)
            out["fine-tune"] = (make(lr), steps, {"lr": lr, "steps": steps,
                                                  "validation_loss": table})
            print(f"fine-tune: step size {lr}, {steps} steps (validation)", file=sys.stderr)
    iters = cfg.rebal_iterations or cfg.iterations
    if "oracle" in names:
        torch.manual_seed(cfg.seed + 1)
        oracle = task.build_model(context_dim=task.context_dim)

        def informed(b):
            x, y = _joined(b)
            return oracle(*x, _context(b, y.shape[1])), y

        _fit(task, cfg, parent, "oracle", oracle, informed, iters, resume, command, task_name)
        oracle.eval()

        def knows(batch, steps):
            with torch.no_grad():
                pred = oracle(*batch.query_x, _context(batch, batch.query_y.shape[1]))
            return dict.fromkeys(steps, pred)

        out["oracle"] = (knows, 0, {})
    if "rebal" in names:
        torch.manual_seed(cfg.seed + 2)
        rebal = RecurrentDynamics(task.build_model(context_dim=cfg.rebal_hidden),
                                  cfg.rebal_hidden).to(task.device)

        def recurrent(b):
            return rebal(*b.support_x, b.support_y, *b.query_x), b.query_y

        _fit(task, cfg, parent, "rebal", rebal, recurrent, iters, resume, command, task_name)
        rebal.eval()

        def remembers(batch, steps):
            with torch.no_grad():
                pred = rebal(*batch.support_x, batch.support_y, *batch.query_x)
            return dict.fromkeys(steps, pred)

        out["rebal"] = (remembers, 0, {})
    return out


# --- few-shot classification -----------------------------------------------------------------
def _task_features(features, x: torch.Tensor) -> torch.Tensor:
    """``[B, n, ...] -> [B, n, F]``, one task at a time (batch norm on each task's batch)."""
    return torch.stack([features(xi) for xi in x])


def head_adapter(features, ways: int, lr: float):
    """A new ``ways``-way linear head (zero-initialised) on frozen ``features``, trained by
    gradient steps on each task's support set (batched over tasks)."""

    def adapter(batch: TaskBatch, steps):
        with torch.no_grad():
            fs = _task_features(features, batch.support_x[0])
            fq = _task_features(features, batch.query_x[0])
        w = fs.new_zeros(fs.shape[0], ways, fs.shape[-1])
        b = fs.new_zeros(fs.shape[0], 1, ways)
        wanted, out, last = set(steps), {}, max(steps)
        for s in range(last + 1):
            if s in wanted:
                out[s] = fq @ w.transpose(1, 2) + b
            if s == last:
                break
            with torch.enable_grad():
                w, b = w.requires_grad_(), b.requires_grad_()
                logits = fs @ w.transpose(1, 2) + b
                loss = F.cross_entropy(logits.reshape(-1, ways), batch.support_y.reshape(-1),
                                       reduction="none").reshape(fs.shape[:2]).mean(1).sum()
                gw, gb = torch.autograd.grad(loss, [w, b])
            w, b = (w - lr * gw).detach(), (b - lr * gb).detach()
        return out

    return adapter


def ncm_adapter(features, ways: int):
    """Nearest class mean of the support features (negative squared distances as logits)."""

    def adapter(batch: TaskBatch, steps):
        with torch.no_grad():
            fs = _task_features(features, batch.support_x[0])
            fq = _task_features(features, batch.query_x[0])
            onehot = F.one_hot(batch.support_y, ways).float()  # [B, n, ways]
            means = onehot.transpose(1, 2) @ fs / onehot.sum(1)[..., None]
            logits = -torch.cdist(fq, means).square()
        return dict.fromkeys(steps, logits)

    return adapter


def fewshot_baselines(task, cfg: BaselinesConfig, names: list[str], parent: Path,
                      resume: bool, command: str, task_name: str
                      ) -> dict[str, tuple[Any, int, dict[str, Any]]]:
    """A network pre-trained to classify all training classes; its features feed a fine-tuned
    head (``fine-tune``) or the nearest class mean (``ncm``)."""
    from meta_train.common.tasks.fewshot import ConvNet

    pool = task.pool("train")
    classes, samples = pool.shape[:2]
    torch.manual_seed(cfg.seed)
    net = ConvNet(classes, task.cfg.filters, task.cfg.image_size).to(task.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.meta_lr)
    run = _sub_run(parent, "pretrained", cfg, task_name, task.cfg, {"pretrained": net}, opt,
                   cfg.iterations, resume, command)

    def draw(rng, n):
        c, s = rng.integers(0, classes, n), rng.integers(0, samples, n)
        x = torch.as_tensor(pool[c, s], device=task.device).float().div_(255.0).unsqueeze(1)
        return x, torch.as_tensor(c, device=task.device)

    def step() -> dict[str, float]:
        x, y = draw(run.rng, cfg.pretrain_batch)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        x, y = draw(np.random.default_rng([cfg.seed, 98]), 1000)
        with torch.no_grad():
            return {"train_class_acc": float((net(x).argmax(-1) == y).float().mean())}

    run.train(step, validate)
    net.eval()
    out: dict[str, tuple[Any, int, dict[str, Any]]] = {}
    ways = task.cfg.ways
    if "fine-tune" in names:
        make = lambda lr: head_adapter(net.features, ways, lr)  # noqa: E731
        lr, steps, table = choose_finetuning(task, make, cfg)
        out["fine-tune"] = (make(lr), steps, {"lr": lr, "steps": steps,
                                              "validation_loss": table})
        print(f"fine-tune: step size {lr}, {steps} steps (validation)", file=sys.stderr)
    if "ncm" in names:
        out["ncm"] = (ncm_adapter(net.features, ways), 0, {})
    return out


# --- the command -----------------------------------------------------------------------------
def train_baselines(task_name: str, cfg: BaselinesConfig, task_cfg, resume: bool = False,
                    command: str = "") -> dict[str, Any]:
    """Train (or resume) the task's baselines and evaluate them; returns the results."""
    device = resolve_run_device(cfg)
    task = make_task(task_name, task_cfg, device)
    names = cfg.baselines(task_name)
    parent = Path(cfg.run_dir) / (cfg.run_name or default_run_name(task_name, "baselines",
                                                                   cfg.seed))
    if not resume and (parent / "results.json").exists():
        raise CheckpointError(f"{parent} already holds results; pass --resume or choose "
                              f"another --run-name")
    cfg.run_name = parent.name
    print(f"run: {parent}  device: {device}  baselines: {', '.join(names)}", file=sys.stderr)
    build = fewshot_baselines if task_name == "fewshot" else regression_baselines
    adapters = build(task, cfg, names, parent, resume, command, task_name)
    methods, per_task = {}, {}
    for name in names:
        adapter, final_step, info = adapters[name]
        summary, pt = task.evaluate(adapter, final_step, batch=cfg.eval_batch)
        methods[name] = {**summary, **info}
        per_task.update({f"{name}/{k}": v for k, v in pt.items()})
        print(f"--- {name}\n{task.describe(summary)}", file=sys.stderr)
    results = {"method": "baselines", "task": task_name, "run": parent.name,
               "command": command, "methods": methods, "fingerprint": task.fingerprint(),
               "config": {"method": dataclasses.asdict(cfg),
                          "task": dataclasses.asdict(task_cfg)}}
    write_results_files(parent, results, per_task)
    print(f"wrote {parent / 'results.json'}", file=sys.stderr)
    return results
