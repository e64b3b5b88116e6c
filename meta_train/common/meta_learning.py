"""What every meta-learning method's run shares: its options, its run directory (config,
progress, resumable checkpoints, results) and the batched functional call of a learner.

A meta-learning method (MAML, the Meta-LSTM) trains meta-parameters over a stream of tasks
(:mod:`meta_train.common.tasks`): each meta-iteration samples ``meta_batch`` tasks, adapts the
learner to each task's support set and scores it on the task's query set. :class:`MetaRun`
keeps the run's directory as the RL methods do (CleanRL-style name, ``config.yaml``,
``progress.csv`` + TensorBoard, atomic checkpoints with every random state, ``--resume``), and
writes the evaluation's ``results.json`` and per-task ``per_task.npz`` at the end.

Tasks are batched: a learner's parameters carry a leading task dimension ``[B, ...]`` and
:func:`batched_call` runs the model once per task with :func:`torch.func.vmap` over
:func:`torch.func.functional_call`, so that adapting 25 tasks costs about one pass.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from meta_train.common.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from meta_train.common.config import ConfigError, save_config
from meta_train.common.config import option as _f
from meta_train.common.device import resolve_device
from meta_train.common.files import atomic_write
from meta_train.common.runs import ProgressLog, default_run_name

Params = dict[str, torch.Tensor]


@dataclass
class MetaRunConfig:
    """Options of a meta-training run every method shares."""

    iterations: int = _f(10000, "meta-iterations (one meta-batch of tasks each)")
    meta_batch: int = _f(25, "tasks per meta-iteration")
    meta_lr: float = _f(1e-3, "Adam learning rate of the meta-parameters")
    meta_grad_clip: float = _f(0.0, "clip the meta-gradient's global norm (0 = off)")
    seed: int = _f(0, "seed of the meta-parameters and of the task stream")
    device: str = _f("auto", "torch device: auto, cpu, cuda, cuda:N")
    torch_threads: int = _f(1, "CPU threads for torch (0 = torch default)")
    run_dir: str = _f("runs", "parent directory of runs")
    run_name: str = _f("", "run name (default <task>__<method>__<seed>__<time>)")
    log_every: int = _f(500, "meta-iterations between progress rows (with a validation score)")
    val_tasks: int = _f(100, "validation tasks scored at every progress row")
    checkpoint_every: int = _f(2000, "meta-iterations between checkpoints")
    keep_checkpoints: int = _f(2, "checkpoints kept (the newest)")
    max_wall_s: float = _f(0.0, "stop meta-training after this many seconds (across resumes; "
                           "0 = no limit) and evaluate as usual")
    max_cpu_s: float = _f(0.0, "stop meta-training after this many CPU seconds of the run's "
                          "process (across resumes; 0 = no limit): a budget that holds on a "
                          "shared machine")
    eval_batch: int = _f(100, "tasks adapted at once in the evaluation")
    progress: bool = _f(True, "show a progress bar")
    tensorboard: bool = _f(True, "also write progress rows as TensorBoard scalars")

    def validate_run(self) -> None:
        """Raise :class:`ConfigError` on inconsistent shared options."""
        for name in ("meta_batch", "log_every", "val_tasks", "checkpoint_every",
                     "keep_checkpoints", "eval_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.iterations < 0 or self.meta_lr <= 0 or self.meta_grad_clip < 0 \
                or self.max_wall_s < 0 or self.max_cpu_s < 0:
            raise ConfigError("iterations, meta_grad_clip, max_wall_s and max_cpu_s must be "
                              ">= 0 and meta_lr > 0")


# --- batched functional calls ----------------------------------------------------------------
def named_params(model: nn.Module) -> Params:
    """The model's parameters by name (the tensors themselves: gradients reach them)."""
    return dict(model.named_parameters())


def expand_params(params: Mapping[str, torch.Tensor], tasks: int) -> Params:
    """Each parameter viewed with a leading task dimension ``[tasks, ...]`` (no copy; the
    gradient of a sum of per-task losses with respect to the view is each task's gradient)."""
    return {k: v.expand(tasks, *v.shape) for k, v in params.items()}


def batched_call(model: nn.Module, params: Mapping[str, torch.Tensor],
                 *inputs: torch.Tensor) -> torch.Tensor:
    """``model`` run once per task with that task's parameters: ``params`` ``[B, ...]``,
    ``inputs`` ``[B, n, ...]`` -> ``[B, n, ...]``. Buffers (normalisers) are shared."""
    buffers = dict(model.named_buffers())

    def one(p: Params, *x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, {**p, **buffers}, x)

    return vmap(one)(dict(params), *inputs)


def flatten(params: Mapping[str, torch.Tensor], batched: bool = True) -> torch.Tensor:
    """Parameters as one vector per task ``[B, P]`` (or ``[P]`` when not batched)."""
    if batched:
        return torch.cat([p.reshape(p.shape[0], -1) for p in params.values()], dim=1)
    return torch.cat([p.reshape(-1) for p in params.values()])


def unflatten(flat: torch.Tensor, like: Mapping[str, torch.Tensor]) -> Params:
    """Inverse of :func:`flatten` for a ``[B, P]`` vector, shapes from the unbatched ``like``."""
    out, i = {}, 0
    for name, p in like.items():
        n = p.numel()
        out[name] = flat[:, i:i + n].reshape(flat.shape[0], *p.shape)
        i += n
    if i != flat.shape[1]:
        raise ValueError(f"vector of {flat.shape[1]} values for {i} parameters")
    return out


def sgd_adapter(model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                lr: float | Mapping[str, torch.Tensor] | Callable[[], Any]):
    """A test-time adapter (:data:`meta_train.common.tasks.Adapter`) that takes plain gradient
    steps from ``model``'s parameters on each task's support set (batched over tasks, no graph
    kept) and predicts its query after each requested number of steps.

    Args:
        model: the learner.
        loss: ``loss(pred, y) -> [B]`` each task's mean loss.
        lr: the step size: a number, one tensor per parameter name (Meta-SGD), or a function
            returning either (read at every call, for step sizes that are trained).
    """

    def adapter(batch, steps):
        rate = lr() if callable(lr) else lr
        if isinstance(rate, Mapping):
            rate = {k: v.detach() for k, v in rate.items()}
        params = {k: v.detach() for k, v in expand_params(named_params(model),
                                                          batch.tasks).items()}
        wanted, out, last = set(steps), {}, max(steps)
        for s in range(last + 1):
            if s in wanted:
                with torch.no_grad():
                    out[s] = batched_call(model, params, *batch.query_x)
            if s == last:
                break
            with torch.enable_grad():
                params = {k: v.requires_grad_() for k, v in params.items()}
                total = loss(batched_call(model, params, *batch.support_x), batch.support_y)
                grads = torch.autograd.grad(total.sum(), list(params.values()))
            params = {k: (v - (rate[k] if isinstance(rate, Mapping) else rate) * g).detach()
                      for (k, v), g in zip(params.items(), grads, strict=True)}
        return out

    return adapter


# --- the run ---------------------------------------------------------------------------------
class MetaRun:
    """A meta-training run's directory, checkpoints and logs.

    Args:
        method: the method's name in the run name and results (e.g. ``maml``).
        task_name: the task's command name (``sinusoid``, ``fewshot``, ``pusher-dynamics``).
        cfg: the method's config (a :class:`MetaRunConfig`).
        task_cfg: the task's config.
        modules: the meta-parameters' modules, checkpointed by name.
        optimizer: the meta-optimiser (checkpointed); None for runs without one.
        resume: continue from the latest complete checkpoint.
        shape_keys: config fields the saved tensors' shapes depend on (``--resume`` refuses a
            change to any of them, naming it).
        command: the command line, recorded in the results.
    """

    def __init__(self, method: str, task_name: str, cfg: MetaRunConfig, task_cfg: Any,
                 modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer | None,
                 resume: bool = False, shape_keys: tuple[str, ...] = (),
                 command: str = "") -> None:
        self.method, self.task_name, self.cfg, self.task_cfg = method, task_name, cfg, task_cfg
        self.modules, self.optimizer, self.shape_keys = modules, optimizer, shape_keys
        self.command = command
        self.run_dir = Path(cfg.run_dir) / (
            cfg.run_name or default_run_name(task_name, method, cfg.seed))
        if not resume and latest_checkpoint(self.run_dir) is not None:
            raise CheckpointError(f"{self.run_dir} already holds checkpoints; pass --resume to "
                                  f"continue it or choose another --run-name")
        cfg.run_name = self.run_dir.name
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng([cfg.seed, 7])
        self.iteration = 0
        self._wall_before, self._wall_start = 0.0, time.perf_counter()
        self._cpu_before, self._cpu_start = 0.0, time.process_time()
        self.progress = ProgressLog(self.run_dir, tensorboard=cfg.tensorboard,
                                    step_key="tasks_seen", index_key="iteration")
        if resume:
            ckpt = latest_checkpoint(self.run_dir)
            if ckpt is None:
                raise CheckpointError(f"--resume: no complete checkpoint in {self.run_dir}")
            self.load(ckpt)
        save_config(_Joined(cfg, task_cfg), self.run_dir / "config.yaml")

    # wall time across resumes
    def wall_s(self) -> float:
        return self._wall_before + time.perf_counter() - self._wall_start

    def cpu_s(self) -> float:
        """CPU time of the run's process across resumes (on a shared machine the budget
        that matters: wall time stretches with the other jobs)."""
        return self._cpu_before + time.process_time() - self._cpu_start

    def out_of_time(self) -> bool:
        return (self.cfg.max_wall_s > 0 and self.wall_s() >= self.cfg.max_wall_s) or \
            (self.cfg.max_cpu_s > 0 and self.cpu_s() >= self.cfg.max_cpu_s)

    def _configs(self) -> dict[str, Any]:
        return {"method": dataclasses.asdict(self.cfg), "task": dataclasses.asdict(self.task_cfg)}

    def save(self) -> Path:
        """Atomic checkpoint: modules, optimiser, counters and every random state."""
        groups = {name: m.state_dict() for name, m in self.modules.items()}
        state: dict[str, Any] = {"iteration": self.iteration, "wall_s": self.wall_s(),
                                 "cpu_s": self.cpu_s(),
                                 "numpy_rng": self.rng.bit_generator.state,
                                 "config": self._configs()}
        if self.optimizer is not None:
            groups["optimizer"], state["optimizer"] = optimizer_to_tensors(self.optimizer)
        groups["torch_rng"] = {"cpu": torch.get_rng_state()}
        path = self.run_dir / "checkpoints" / f"iter_{self.iteration:08d}"
        save_checkpoint(path, groups, {}, state)
        old = sorted(p for p in path.parent.iterdir() if p.is_dir()
                     and p.name.startswith("iter_") and not p.name.endswith(".tmp"))
        for p in old[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(p, ignore_errors=True)
        return path

    def load(self, path: Path) -> None:
        """Restore a checkpoint of this run (refusing changed shape options)."""
        tg, _, state = load_checkpoint(path)
        saved = state.get("config", {})
        now = self._configs()
        changed = [f"--{k.replace('_', '-')} {saved[part].get(k)!r} -> {now[part][k]!r}"
                   for part in ("method", "task") for k in self.shape_keys
                   if k in now[part] and saved.get(part, {}).get(k) != now[part][k]]
        if changed:
            raise CheckpointError(f"{path}: --resume keeps the options that shape the "
                                  f"meta-parameters; " + "; ".join(changed))
        try:
            for name, m in self.modules.items():
                m.load_state_dict(tg[name])
            if self.optimizer is not None:
                optimizer_from_tensors(self.optimizer, tg["optimizer"], state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"{path}: checkpoint does not match ({e})") from None
        torch.set_rng_state(tg["torch_rng"]["cpu"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.iteration = int(state["iteration"])
        self._wall_before = float(state.get("wall_s", 0.0))
        self._wall_start = time.perf_counter()
        self._cpu_before = float(state.get("cpu_s", 0.0))
        self._cpu_start = time.process_time()
        self.progress.trim(self.iteration, self.iteration * self.cfg.meta_batch)

    def log(self, row: dict[str, Any]) -> None:
        """One progress row (``iteration``, ``tasks_seen`` and ``wall_s`` added)."""
        self.progress.log({"iteration": self.iteration,
                           "tasks_seen": self.iteration * self.cfg.meta_batch,
                           "wall_s": round(self.wall_s(), 1), "cpu_s": round(self.cpu_s(), 1),
                           **row})

    def train(self, step: Callable[[], dict[str, float]],
              validate: Callable[[], dict[str, float]]) -> None:
        """Run ``step`` (one meta-iteration; returns scalars to average into the row) until
        ``iterations`` or a time budget (``max_wall_s``, ``max_cpu_s``); ``validate`` scores
        the validation tasks at every row (and at a budget's stop); checkpoints every
        ``checkpoint_every`` iterations and at the end."""
        from tqdm import tqdm

        cfg = self.cfg
        bar = tqdm(total=cfg.iterations, initial=self.iteration, unit="it",
                   desc=f"{self.method} {self.task_name}", disable=not cfg.progress,
                   file=sys.stderr, dynamic_ncols=True)
        sums: dict[str, float] = {}
        count = 0
        try:
            while self.iteration < cfg.iterations and not self.out_of_time():
                for k, v in step().items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                self.iteration += 1
                bar.update(1)
                if self.iteration % cfg.log_every == 0 or self.iteration == cfg.iterations:
                    row = {k: v / max(count, 1) for k, v in sums.items()}
                    row.update({f"val_{k}": v for k, v in validate().items()})
                    self.log(row)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()})
                    sums, count = {}, 0
                if self.iteration % cfg.checkpoint_every == 0:
                    self.save()
            if count:  # stopped by a time budget between rows: the last row still counts
                row = {k: v / count for k, v in sums.items()}
                row.update({f"val_{k}": v for k, v in validate().items()})
                self.log(row)
        finally:
            bar.close()
        self.save()
        self.progress.close()

    def write_results(self, results: dict[str, Any], per_task: dict[str, np.ndarray]) -> Path:
        """``results.json`` (summary, configs, command, wall time) and ``per_task.npz`` (the
        per-task arrays a comparison pairs); the final meta-parameters in ``final/``."""
        save_checkpoint(self.run_dir / "final",
                        {name: m.state_dict() for name, m in self.modules.items()}, {},
                        {"config": self._configs(), "iteration": self.iteration})
        doc = {"method": self.method, "task": self.task_name, "run": self.run_dir.name,
               "command": self.command, "iterations": self.iteration,
               "meta_train_wall_s": round(self.wall_s(), 1),
               "meta_train_cpu_s": round(self.cpu_s(), 1), **results,
               "config": self._configs()}
        return write_results_files(self.run_dir, doc, per_task)


def write_results_files(run_dir: Path, doc: dict[str, Any],
                        per_task: dict[str, np.ndarray]) -> Path:
    """``<run_dir>/results.json`` (``doc``) and ``per_task.npz`` (``per_task``), atomically.
    ``doc["methods"]`` maps each method evaluated to its summary; ``per_task`` keys are
    ``<method>/<metric>``."""
    path = Path(run_dir) / "results.json"
    atomic_write(path, (json.dumps(doc, indent=1, default=_jsonable) + "\n").encode())
    buf = io.BytesIO()
    np.savez(buf, **per_task)
    atomic_write(Path(run_dir) / "per_task.npz", buf.getvalue())
    return path


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


@dataclass
class _Joined:
    """Both configs for ``save_config`` (one YAML with ``method`` and ``task``)."""

    method: Any
    task: Any

    def __post_init__(self) -> None:
        self.method = dataclasses.asdict(self.method)
        self.task = dataclasses.asdict(self.task)


def resolve_run_device(cfg: MetaRunConfig) -> torch.device:
    """Apply ``torch_threads`` and resolve ``device``."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    return resolve_device(cfg.device)


def meta_update(opt: torch.optim.Optimizer, loss: torch.Tensor, params, clip: float) -> None:
    """One optimiser step on ``loss``: clear, backpropagate, clip the gradient norm of
    ``params`` to ``clip`` (0: no clipping), step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
