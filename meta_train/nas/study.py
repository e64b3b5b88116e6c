"""Studies in Optuna storage, run by one or many worker processes, and their best config.

Storage is an RDB URL: an SQLite file by default (one machine: the workers of ``--workers``
share it), PostgreSQL (or MySQL) for workers on many machines. The storage runs heartbeats: a
worker that dies mid-trial leaves a trial that the next worker to start a trial finds silent
for ``grace_s``, marks FAIL and hands to Optuna's retry callback, which enqueues the same
values once (``RetryHeartbeatStaleTrialCallback(max_retry=1)``, the new name of
``RetryFailedTrialCallback``). A trial interrupted by Ctrl-C is enqueued again likewise. Only
complete and pruned trials count towards ``n_trials``, so no trial is lost or counted twice;
each worker stops once the study has ``n_trials`` of them (workers finishing at the same time
may add up to ``workers - 1`` more).

A trial: the space's decisions are suggested on the Optuna trial, merged over the trainer's
preset, the fixed values and the trial budget, and handed to the objective (in a scratch
folder); intermediate values go to the pruner. An objective that raises, or returns NaN, fails
its trial (user attribute ``nas_error``) and the search goes on; an error in the search's own
input (:class:`~meta_train.common.config.ConfigError`) stops it.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import random
import socket
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from meta_train.common import objectives as registry
from meta_train.common.config import ConfigError, build_config
from meta_train.common.files import atomic_write
from meta_train.common.objectives import TrainableObjective
from meta_train.nas.config import NASConfig
from meta_train.nas.sampler import ERROR_ATTR, make_sampler
from meta_train.nas.space import SearchSpace, SpaceError, index_of

CONFIG_ATTR = "nas.config"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


class TrialError(Exception):
    """The objective failed on a trial's values; the trial ends FAIL, the search goes on."""


def _quiet_experimental():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    warnings.simplefilter("ignore", FutureWarning)
    return ctx


class _SQLiteConnect:
    """SQLite connections in WAL mode with ``synchronous=NORMAL``: a commit no longer waits
    for a sync of the whole file (four times fewer seconds of storage per trial here), and a
    killed process still loses nothing committed (only a power cut may drop the last
    commits). WAL needs a local file system: SQLite is the one-machine storage."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


OPEN_ATTEMPTS = 5
"""Tries to open a storage whose schema another worker may be creating at the same moment."""


def open_storage(url: str, heartbeat_s: int = 60, grace_s: int = 180):
    """An :class:`optuna.storages.RDBStorage` with heartbeats and one retry of a lost trial.

    Raises:
        ConfigError: the URL is not a database URL Optuna can use, its driver is missing, or
            the database cannot be opened (one line, password hidden).
    """
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ConfigError(f"storage {url!r} is not a database URL (e.g. "
                          f"sqlite:///runs/nas/nas.db or "
                          f"postgresql://user:password@host:5432/db)") from None
    shown = u.render_as_string(hide_password=True)
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql"):
        raise ConfigError(f"storage {shown}: Optuna's RDB storage takes sqlite, postgresql or "
                          f"mysql URLs, not {backend!r}")
    engine_kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or db.startswith("file::memory:"):
            raise ConfigError(f"storage {shown}: an in-memory database is not shared between "
                              f"workers or kept for a resume; give a file, "
                              f"sqlite:///runs/nas/nas.db")
        path = Path(db)
        if path.is_dir():
            raise ConfigError(f"storage {shown}: {path} is a directory; give a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"storage {shown}: cannot create {path.parent} ({e})") from None
        engine_kwargs = {"creator": _SQLiteConnect(str(path))}
    else:
        try:
            u.get_dialect()
        except (ImportError, sqlalchemy.exc.NoSuchModuleError) as e:
            hint = "psycopg2-binary" if backend == "postgresql" else "PyMySQL"
            raise ConfigError(f"storage {shown}: the database driver is not installed ({e}); "
                              f"pip install {hint}") from None
    ctx = _quiet_experimental()
    try:
        for attempt in range(OPEN_ATTEMPTS):
            try:
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_s,
                    grace_period=grace_s,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)))
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
                # Workers started together on a new database race to create its schema: the
                # losers' inserts collide with the winner's (or find it locked). The schema
                # exists once the winner is done, so open it again.
                if attempt == OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1) + 0.1 * random.random())
        raise AssertionError("unreachable")
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as e:
        reason = getattr(e, "orig", None) or e
        first = str(reason).strip().splitlines()[0] if str(reason).strip() else type(e).__name__
        raise ConfigError(f"storage {shown}: cannot open it ({first})") from None
    finally:
        ctx.__exit__(None, None, None)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Optuna's pruner of that name (Optuna's defaults)."""
    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}")


def fixed_values(cfg: NASConfig, objective: TrainableObjective,
                 space: SearchSpace | None = None, budget: bool = True) -> dict[str, Any]:
    """The trainer's preset, the fixed values and (in trials) the trial budget."""
    values = {**objective.base_values(cfg.base_preset), **cfg.base}
    if budget:
        values.update(cfg.budget)
    if objective.takes_search_space and space is not None:
        values["search_space"] = space.description
    return values


def check_space(space: SearchSpace, objective: TrainableObjective,
                fixed: Mapping[str, Any]) -> None:
    """The space fits the objective: it sets only fields the trainer's config has, and each of
    its values makes a valid config over the fixed values.

    Raises:
        SpaceError: one line naming the decision and the value.
    """
    names = [d.name for d in space.flat]
    if space.count is not None:
        names.append(space.count.name)
    if space.has_layers:
        names.append(space.field)
    if objective.fields is not None:
        unknown = [n for n in names if n not in objective.fields]
        if unknown:
            raise SpaceError(f"the space sets {', '.join(unknown)}, which the {objective.name} "
                             f"config does not have (its fields: "
                             f"{', '.join(objective.fields)})")
    try:
        objective.check(dict(fixed))
    except ConfigError as e:
        raise ConfigError(f"the {objective.name} config of the search (base preset, base and "
                          f"budget) is invalid: {e}") from None
    for d in [*space.flat, *([space.count] if space.count else [])]:
        values = (d.choices if d.discrete
                  else [int(d.low) if d.integer else d.low, int(d.high) if d.integer else d.high])
        given = {ref: allowed[0] for ref, allowed in d.when}
        for v in values:
            try:
                objective.check({**fixed, **given, d.name: v})
            except ConfigError as e:
                raise SpaceError(f"decision {d.name}={v!r} makes an invalid {objective.name} "
                                 f"config: {e}") from None


class TrialFunction:
    """The function Optuna calls per trial (picklable: workers rebuild it)."""

    def __init__(self, objective: TrainableObjective, space: SearchSpace,
                 fixed: Mapping[str, Any]) -> None:
        self.objective, self.space, self.fixed = objective, space, dict(fixed)

    def __call__(self, trial: optuna.Trial) -> float:
        t0 = time.perf_counter()
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            params = self.space.suggest(trial)
            values = {**self.fixed, **self.space.structure(params)}
            try:
                self.objective.check(values)
            except ConfigError as e:
                return self._fail(trial, f"invalid config: {e}")

            def report(step: int, value: float) -> None:
                trial.report(float(value), int(step))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step} ({value:.4g})")

            try:
                with tempfile.TemporaryDirectory(prefix="nas_trial_") as work:
                    value = float(self.objective.evaluate(values, report, Path(work)))
            except (optuna.TrialPruned, ConfigError, FileNotFoundError):
                raise
            except KeyboardInterrupt:
                raise
            except Exception as e:  # the architecture failed, not the search
                return self._fail(trial, f"{type(e).__name__}: {e}")
            if not math.isfinite(value):
                return self._fail(trial, f"the objective returned {value}")
            return value
        except KeyboardInterrupt:
            _enqueue_retry(trial)
            raise
        finally:
            trial.set_user_attr("wall_s", round(time.perf_counter() - t0, 2))

    @staticmethod
    def _fail(trial: optuna.Trial, message: str) -> float:
        trial.set_user_attr(ERROR_ATTR, message[:1000])
        raise TrialError(f"trial {trial.number}: {message}")


def _enqueue_retry(trial: optuna.Trial) -> None:
    """Enqueue an interrupted trial's values once more (as the heartbeat's retry does)."""
    try:
        frozen = trial.study._storage.get_trial(trial._trial_id)
        if frozen.system_attrs.get("retry_history"):
            return
        ctx = _quiet_experimental()
        try:
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(trial.study, frozen)
        finally:
            ctx.__exit__(None, None, None)
    except Exception:  # noqa: BLE001 - interrupted anyway; the trial is only not retried
        pass


def study_name_for(cfg: NASConfig, preset: str = "") -> str:
    """``<preset or objective>__<sampler>__<seed>``."""
    stem = Path(preset).stem if preset else cfg.objective
    return f"{stem}__{cfg.sampler}__{cfg.seed}"


def open_study(cfg: NASConfig, study_name: str, objective: TrainableObjective,
               space: SearchSpace) -> optuna.Study:
    """Create or load the study; the first worker stores the study's fields, the others must
    give the same.

    Raises:
        ConfigError: the study was created with other values (the message lists them).
    """
    storage = open_storage(cfg.storage, cfg.heartbeat_s, cfg.grace_s)
    sampler = make_sampler(cfg.sampler, space, cfg.seed, batch_size=cfg.batch_size,
                           lr=cfg.controller_lr, baseline_decay=cfg.baseline_decay)
    study = optuna.create_study(storage=storage, study_name=study_name, sampler=sampler,
                                pruner=make_pruner(cfg.pruner),
                                direction=objective.direction, load_if_exists=True)
    mine = json.loads(json.dumps(cfg.study_values()))
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, mine)
        study.set_user_attr("nas.metric", f"{objective.metric} ({objective.direction})")
    elif stored != mine:
        diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        raise ConfigError(f"study {study_name!r} was created with other {', '.join(diff)}; "
                          f"join it with the same values (or none: they are read from the "
                          f"study) or choose another --study-name")
    if study.direction.name.lower() != objective.direction:
        raise ConfigError(f"study {study_name!r} is a {study.direction.name.lower()} study, "
                          f"the {objective.name} objective is to {objective.direction}")
    return study


def stored_config(storage_url: str, study_name: str) -> dict[str, Any]:
    """The study fields stored in an existing study.

    Raises:
        ConfigError: no such study, or it was not made by ``meta-train nas``.
    """
    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ConfigError(f"no study {study_name!r} in {storage_url} (studies: "
                          f"{', '.join(names) or 'none'})") from None
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        raise ConfigError(f"study {study_name!r} was not made by meta-train nas (no "
                          f"{CONFIG_ATTR} attribute)")
    return dict(stored)


def counted(study: optuna.Study) -> int:
    """Complete and pruned trials."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


class Progress:
    """One line per trial this worker finishes."""

    def __init__(self, space: SearchSpace, worker: int, enabled: bool) -> None:
        self.space, self.worker, self.enabled = space, worker, enabled

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not self.enabled:
            return
        value = "" if trial.value is None else f" {trial.value:.5g}"
        if trial.state == TrialState.FAIL:
            value = f" ({trial.user_attrs.get(ERROR_ATTR, 'failed')})"
        try:
            best = f"best {study.best_value:.5g} (trial {study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        wall = trial.user_attrs.get("wall_s", 0.0)
        print(f"nas[{self.worker}]: trial {trial.number} {trial.state.name}{value}  {best}  "
              f"{wall:.1f} s  {self.space.describe(trial.params)}", file=sys.stderr, flush=True)


def run_worker(cfg_values: dict[str, Any], study_name: str, worker: int = 0) -> int:
    """Run trials until the study has ``n_trials`` counted ones (or ``timeout``); returns the
    number this worker ran."""
    import torch

    cfg = build_config(NASConfig, cfg_values)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = registry.get(cfg.objective)
    space = SearchSpace.from_mapping(cfg.space)
    study = open_study(cfg, study_name, objective, space)
    remaining = cfg.n_trials - counted(study)
    if remaining <= 0:
        return 0
    before = len(study.trials)
    ctx = _quiet_experimental()
    try:
        study.optimize(TrialFunction(objective, space, fixed_values(cfg, objective, space)),
                       n_trials=remaining, timeout=cfg.timeout or None, catch=(TrialError,),
                       callbacks=[MaxTrialsCallback(cfg.n_trials, states=COUNTED),
                                  Progress(space, worker, cfg.progress)])
    finally:
        ctx.__exit__(None, None, None)
    return len(study.trials) - before


def _worker_entry(cfg_values: dict[str, Any], study_name: str, worker: int) -> None:
    try:
        run_worker(cfg_values, study_name, worker)
    except ConfigError as e:
        print(f"nas[{worker}]: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def best_config(cfg: NASConfig, study: optuna.Study, objective: TrainableObjective,
                space: SearchSpace, folder: Path | None = None,
                ) -> tuple[dict[str, Any], optuna.trial.FrozenTrial]:
    """The trainer's full-budget config with the best trial's decisions, checked by it; its
    outputs go to ``folder`` where the objective says how.

    Raises:
        ConfigError: the study has no complete trial yet.
    """
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(f"study {study.study_name!r} has no complete trial yet") from None
    values = {**fixed_values(cfg, objective, space, budget=False),
              **space.structure(best.params)}
    if folder is not None and objective.outputs is not None:
        values.update(objective.outputs(folder))
    objective.check(values)
    return values, best


def write_best(path: Path, values: Mapping[str, Any], study: optuna.Study,
               best: optuna.trial.FrozenTrial, objective: TrainableObjective,
               storage_url: str) -> None:
    """The best config as a preset of the trainer, with where it came from in comments."""
    from sqlalchemy.engine import make_url

    where = make_url(storage_url).render_as_string(hide_password=True)
    train = objective.trainer_command.format(preset=path) if objective.trainer_command else ""
    lines = [f"# Best config of study {study.study_name} ({where}): trial {best.number}, "
             f"{objective.metric} {best.value:.6g} ({objective.direction}) on the trial "
             f"budget,", f"# {counted(study)} complete or pruned trials. The trial budget is "
             f"not in it: this is the full-budget config."]
    if train:
        lines.append(f"# Train it: {train}")
    text = "\n".join(lines) + "\n" + yaml.safe_dump(dict(values), sort_keys=False)
    atomic_write(Path(path), text.encode())


def run_study(cfg: NASConfig, study_name: str) -> dict[str, Any]:
    """Check the space, create or resume the study, prepare the objective's data, run
    ``cfg.workers`` workers (this process and ``workers - 1`` spawned ones), write the best
    config; returns a summary."""
    cfg.validate()
    objective = registry.get(cfg.objective)
    space = SearchSpace.from_mapping(cfg.space)
    check_space(space, objective, fixed_values(cfg, objective, space))
    study = open_study(cfg, study_name, objective, space)
    for values in cfg.enqueue:  # all decisions or some (the sampler draws the others)
        params = space.flatten(values)
        bad = [k for k in values if k not in space.structure(params)] + [
            f"{k}={v!r}" for k, v in params.items()
            if space.by_name[k].discrete and index_of(space.by_name[k].choices, v) is None]
        if bad:
            raise SpaceError(f"enqueue: {', '.join(bad)} is not a decision and value of the "
                             f"space")
        study.enqueue_trial(params, user_attrs={"enqueued": True}, skip_if_exists=True)
    t0 = time.perf_counter()
    if objective.prepare is not None and counted(study) < cfg.n_trials:
        objective.prepare(fixed_values(cfg, objective, space))
    t_prepare = time.perf_counter() - t0
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_entry, args=(cfg.to_dict(), study_name, i))
             for i in range(1, cfg.workers)]
    for p in procs:
        p.start()
    try:
        ran = run_worker(cfg.to_dict(), study_name, 0)
    finally:
        for p in procs:
            p.join()
    codes = [p.exitcode for p in procs]
    summary: dict[str, Any] = {
        "study": study_name, "storage": cfg.storage, "trials_this_worker": ran,
        "counted": counted(study), "worker_exit_codes": codes,
        "prepare_s": round(t_prepare, 1), "wall_s": round(time.perf_counter() - t0, 1)}
    out = Path(cfg.out or f"runs/nas/{study_name}/best.yaml")
    try:
        values, best = best_config(cfg, study, objective, space, out.parent)
    except ConfigError as e:
        summary["best"] = None
        print(f"nas: {e}", file=sys.stderr)
        return summary
    write_best(out, values, study, best, objective, cfg.storage)
    summary.update(best={"trial": best.number, "value": best.value, "params": best.params},
                   best_config=str(out))
    return summary
