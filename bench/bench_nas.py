"""The NAS controller against Optuna's TPE and random samplers (docs/benchmarks.md).

The runs behind docs/studies_nas.md (a shared 2-core box: one benchmark process at a time):

    nice -n 15 .venv/bin/python bench/bench_nas.py synthetic --seeds 0-9 \\
        --n-trials 200 --variants controller controller_lr5e-3 tpe random \\
        --json docs/runs/nas_synthetic.json
    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_nas.py estimator --seeds 0-2 \\
        --n-trials 10 --jobs 1 --json docs/runs/nas_estimator.json
    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_nas.py overhead --n-trials 200 \\
        --json docs/runs/nas_overhead.json
    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_nas.py throughput --seconds 150 \\
        --delay-s 3 --json docs/runs/nas_throughput.json

``synthetic``: the preset's synthetic space (known optimum 1), every sampler on every seed
(seed ``s`` also plants target ``s``), same number of trials; best found against trials, mean
and a 95% bootstrap interval over seeds.
``estimator``: the estimator preset's space and trial budget, one SQLite study per sampler and
seed (``runs/nas/bench_estimator.db``, viewable in optuna-dashboard), ``--jobs`` studies at a
time, one torch thread each. Training is deterministic (fixed seed, one thread), so a string
already trained by any study is read from a cache (``runs/nas/bench_estimator_cache.jsonl``)
instead of trained again: the curves are those of full runs, the wall times of the training
done. ``overhead``: seconds per trial inside each sampler's methods (instant objective), in
memory and with SQLite. ``throughput``: trials per hour of the real command with one and with
two worker processes for ``--seconds`` each: by default the synthetic objective sleeping
``--delay-s`` per trial in place of training (the study's own cost: storage, heartbeats, the
controller's replay), or ``--objective estimator`` (real training, a one-epoch budget; on a
machine with a free core per worker).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from meta_train.common import objectives as registry
from meta_train.common.config import build_config
from meta_train.nas.config import NASConfig, preset_values
from meta_train.nas.sampler import make_sampler
from meta_train.nas.space import SearchSpace
from meta_train.nas.study import TrialError, TrialFunction, fixed_values, open_storage

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"controller": ("controller", 6e-4), "controller_lr5e-3": ("controller", 5e-3),
            "tpe": ("tpe", None), "random": ("random", None)}
CHECKPOINTS = (5, 10, 20, 30, 40, 60, 100, 150, 200, 300, 500, 1000)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def _interval(x: np.ndarray, rng: np.random.Generator, n: int = 10_000) -> list[float]:
    """95% percentile-bootstrap interval of the mean over seeds."""
    if len(x) < 2:
        return [float(x.mean())] * 2
    means = rng.choice(x, size=(n, len(x))).mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def summarise(curves: dict[str, list[list[float]]], maximize: bool) -> dict[str, Any]:
    """Best found after k trials: mean and interval over seeds, per variant."""
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for name, runs in curves.items():
        rows = {}
        for k in CHECKPOINTS:
            vals = [(max if maximize else min)(r[:k]) for r in runs if len(r) >= k]
            if len(vals) == len(runs) and vals:
                a = np.asarray(vals)
                rows[k] = {"mean": float(a.mean()), "ci95": _interval(a, rng),
                           "min": float(a.min()), "max": float(a.max())}
        out[name] = rows
    return out


def _sampler(variant: str, space: SearchSpace, seed: int, batch_size: int):
    kind, lr = VARIANTS[variant]
    if kind == "controller":
        return make_sampler(kind, space, seed, batch_size=batch_size, lr=lr)
    return make_sampler(kind, space, seed)


# --- synthetic ----------------------------------------------------------------------------------
def _synthetic_run(args: tuple) -> tuple[str, int, list[float], float]:
    variant, seed, n_trials, batch_size = args
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values = preset_values("synthetic")
    space = SearchSpace.from_mapping(values["space"])
    obj = registry.get("synthetic")
    # each seed plants its own target: the mean is over problems as well as sampler seeds
    fixed = {**values["budget"], "target_seed": seed, "search_space": space.description}
    study = optuna.create_study(sampler=_sampler(variant, space, seed, batch_size),
                                direction="maximize")
    t0 = time.perf_counter()
    study.optimize(TrialFunction(obj, space, fixed), n_trials=n_trials)
    return variant, seed, [t.value for t in study.trials], time.perf_counter() - t0


def cmd_synthetic(a: argparse.Namespace) -> dict[str, Any]:
    jobs = [(v, s, a.n_trials, a.batch_size) for v in a.variants for s in _seeds(a.seeds)]
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        results = pool.map(_synthetic_run, jobs)
    curves: dict[str, list] = {v: [] for v in a.variants}
    raw = []
    for variant, seed, values, wall in results:
        curves[variant].append(values)
        raw.append({"variant": variant, "seed": seed, "values": values, "wall_s": wall})
    summary = summarise(curves, maximize=True)
    for v in a.variants:
        hits = [int(np.argmax(np.asarray(c) >= 1.0 - 1e-9)) + 1 if max(c) >= 1.0 - 1e-9
                else None for c in curves[v]]
        summary[v]["optimum_found"] = f"{sum(h is not None for h in hits)}/{len(hits)}"
        summary[v]["trials_to_optimum"] = hits
    return {"space": preset_values("synthetic")["space"], "budget":
            preset_values("synthetic")["budget"], "batch_size": a.batch_size,
            "summary": summary, "runs": raw}


# --- estimator ----------------------------------------------------------------------------------
class CachedObjective:
    """An objective whose values are looked up by config before training (training is
    deterministic); the cache file is shared by the benchmark's processes."""

    def __init__(self, evaluate, path: Path) -> None:
        self.evaluate, self.path = evaluate, path

    def _lookup(self, key: str) -> float | None:
        if not self.path.is_file():
            return None
        for line in self.path.read_text().splitlines():
            row = json.loads(line)
            if row["key"] == key:
                return row["value"]
        return None

    def __call__(self, values: dict, report, workdir: Path) -> float:
        key = json.dumps(values, sort_keys=True, default=str)
        hit = self._lookup(key)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        value = self.evaluate(values, report, workdir)
        row = {"key": key, "value": value, "train_s": round(time.perf_counter() - t0, 1)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps(row) + "\n")
        return value


def _estimator_run(args: tuple) -> dict[str, Any]:
    variant, seed, n_trials, batch_size, storage, cache = args
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = build_config(NASConfig, preset_values("estimator"))
    space = SearchSpace.from_mapping(cfg.space)
    base = registry.get("estimator")
    obj = dataclasses.replace(base, evaluate=CachedObjective(base.evaluate, Path(cache)))
    name = f"bench_estimator__{variant}__{seed}"
    study = optuna.create_study(storage=open_storage(storage), study_name=name,
                                sampler=_sampler(variant, space, seed, batch_size),
                                direction="minimize", load_if_exists=True)
    done = len([t for t in study.trials if t.state.is_finished()])
    t0 = time.perf_counter()
    if done < n_trials:
        study.optimize(TrialFunction(obj, space, fixed_values(cfg, base, space)),
                       n_trials=n_trials - done, catch=(TrialError,))
    trials = [{"number": t.number, "state": t.state.name, "value": t.value,
               "params": t.params, "wall_s": t.user_attrs.get("wall_s")}
              for t in study.trials]
    print(f"bench_nas: {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr,
          flush=True)
    return {"variant": variant, "seed": seed, "study": name, "trials": trials}


def cmd_estimator(a: argparse.Namespace) -> dict[str, Any]:
    storage = f"sqlite:///{ROOT / 'runs/nas/bench_estimator.db'}"
    cache = ROOT / "runs/nas/bench_estimator_cache.jsonl"
    cfg = build_config(NASConfig, preset_values("estimator"))
    obj = registry.get("estimator")
    obj.prepare(fixed_values(cfg, obj, SearchSpace.from_mapping(cfg.space)))
    jobs = [(v, s, a.n_trials, a.batch_size, storage, str(cache))
            for s in _seeds(a.seeds) for v in a.variants]
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        runs = pool.map(_estimator_run, jobs, chunksize=1)
    curves: dict[str, list] = {v: [] for v in a.variants}
    for r in runs:
        vals = [t["value"] if t["value"] is not None else float("inf") for t in r["trials"]]
        curves[r["variant"]].append(vals[:a.n_trials])
    rows = [json.loads(x) for x in cache.read_text().splitlines()]
    train_s = np.array([r["train_s"] for r in rows])
    best = min((t for r in runs for t in r["trials"] if t["value"] is not None),
               key=lambda t: t["value"])
    return {"preset": "estimator", "budget": cfg.budget, "space": cfg.space,
            "batch_size": a.batch_size, "storage": storage,
            "summary": summarise(curves, maximize=False),
            "distinct_strings_trained": len(rows),
            "train_s_per_string": {"mean": float(train_s.mean()),
                                   "median": float(np.median(train_s)),
                                   "max": float(train_s.max())},
            "best_overall": best, "runs": runs}


# --- overhead -----------------------------------------------------------------------------------
def _timed(sampler) -> list[float]:
    spent = [0.0]
    for name in ("infer_relative_search_space", "sample_relative", "sample_independent",
                 "before_trial", "after_trial"):
        fn = getattr(sampler, name)

        def wrapper(*args, _fn=fn, **kw):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kw)
            finally:
                spent[0] += time.perf_counter() - t0

        setattr(sampler, name, wrapper)
    return spent


def cmd_overhead(a: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values = preset_values("synthetic")
    space = SearchSpace.from_mapping(values["space"])
    obj = registry.get("synthetic")
    fixed = {**values["budget"], "search_space": space.description}
    out: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    tmp = ROOT / "runs/nas/bench_overhead.db"
    tmp.unlink(missing_ok=True)
    for store in ("memory", "sqlite"):
        for variant in ("controller", "tpe", "random"):
            sampler = _sampler(variant, space, 0, 5)
            spent = _timed(sampler)
            storage = None if store == "memory" else open_storage(f"sqlite:///{tmp}")
            study = optuna.create_study(storage=storage, sampler=sampler, direction="maximize",
                                        study_name=f"{variant}_{store}")
            per_trial, walls = [], []

            def cb(study, trial, _spent=spent, _pt=per_trial, _w=walls):
                _pt.append(_spent[0])
                _w.append(time.perf_counter())
                _spent[0] = 0.0

            t0 = time.perf_counter()
            study.optimize(TrialFunction(obj, space, fixed), n_trials=a.n_trials, callbacks=[cb])
            wall = np.diff([t0, *walls])
            pt = np.asarray(per_trial) * 1000
            rng = np.random.default_rng(0)
            windows = {f"{lo}-{hi}": {"sampler_ms": float(pt[lo:hi].mean()),
                                      "sampler_ms_ci95": _interval(pt[lo:hi], rng),
                                      "sampler_ms_median": float(np.median(pt[lo:hi])),
                                      "trial_wall_ms": float(wall[lo:hi].mean() * 1000)}
                       for lo, hi in ((0, 50), (a.n_trials - 50, a.n_trials))}
            out[f"{variant} ({store})"] = windows
            raw[f"{variant} ({store})"] = {"sampler_ms": [round(x, 3) for x in pt],
                                           "trial_wall_ms": [round(x * 1000, 3) for x in wall]}
            print(f"bench_nas: overhead {variant} {store}: {windows}", file=sys.stderr,
                  flush=True)
    return {"space": "synthetic preset", "n_trials": a.n_trials, "results": out,
            "per_trial": raw,
            "note": "sampler_ms: time inside the sampler's methods per trial; ci95: bootstrap "
                    "over the window's trials"}


# --- throughput ---------------------------------------------------------------------------------
def cycle_times(study: optuna.Study) -> dict[str, Any]:
    """Seconds from one trial's start to the next one's in the same worker (a trial's whole
    cost: the objective and the study's own work), with a 95% bootstrap interval; trials per
    hour of the study is workers * 3600 / mean cycle."""
    by_worker: dict[str, list] = {}
    for t in study.trials:
        if t.state.name == "COMPLETE":
            by_worker.setdefault(t.user_attrs.get("worker", ""), []).append(t.datetime_start)
    gaps = np.asarray([(b - a).total_seconds() for starts in by_worker.values()
                       for a, b in zip(sorted(starts), sorted(starts)[1:], strict=False)])
    lo, hi = _interval(gaps, np.random.default_rng(0))
    n = len(by_worker)
    return {"cycle_s_mean": float(gaps.mean()), "cycle_s_ci95": [lo, hi], "cycles": len(gaps),
            "trials_per_hour_from_cycles": 3600 * n / float(gaps.mean()),
            "trials_per_hour_ci95": [3600 * n / hi, 3600 * n / lo]}


def cmd_throughput(a: argparse.Namespace) -> dict[str, Any]:
    db = ROOT / "runs/nas/bench_throughput.db"
    db.unlink(missing_ok=True)
    storage = f"sqlite:///{db}"
    if a.objective == "estimator":  # real training: a one-epoch budget
        preset, budget = "estimator", {**preset_values("estimator")["budget"], "epochs": 1}
    else:  # a sleep stands in for training: what is left is the study's own cost
        preset, budget = "synthetic", {"target_seed": 0, "delay_s": a.delay_s}
    out: dict[str, Any] = {"preset": preset, "budget": budget, "sampler": a.sampler,
                           "seconds": a.seconds}
    for workers in (1, 2):
        name = f"throughput_{workers}"
        cmd = [sys.executable, "-m", "meta_train.cli", "nas", "--preset", preset,
               "--budget", json.dumps(budget), "--storage", storage, "--study-name", name,
               "--n-trials", "100000", "--timeout", str(a.seconds), "--workers", str(workers),
               "--sampler", a.sampler, "--no-progress", "--out", str(db.parent / f"{name}.yaml")]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        start = min(t.datetime_start for t in study.trials)
        end = max(t.datetime_complete for t in done)
        span = (end - start).total_seconds()
        load = os.getloadavg()
        out[f"{workers}_workers"] = {
            "trials": len(done), "first_start_to_last_end_s": round(span, 1),
            "trials_per_hour": round(3600 * len(done) / span, 1), "command_wall_s": round(wall),
            "workers_seen": len({t.user_attrs.get("worker") for t in done}),
            "loadavg_after": [round(x, 2) for x in load], "command": " ".join(cmd[1:]),
            **cycle_times(study)}
        print(f"bench_nas: {workers} workers: {out[f'{workers}_workers']}", file=sys.stderr)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("synthetic", "estimator"):
        s = sub.add_parser(name)
        s.add_argument("--seeds", default="0-2")
        s.add_argument("--n-trials", type=int, default=40)
        s.add_argument("--batch-size", type=int, default=5)
        s.add_argument("--jobs", type=int, default=2)
        s.add_argument("--variants", nargs="+", default=["controller", "tpe", "random"],
                       choices=list(VARIANTS))
    s = sub.add_parser("overhead")
    s.add_argument("--n-trials", type=int, default=300)
    s = sub.add_parser("throughput")
    s.add_argument("--seconds", type=int, default=600)
    s.add_argument("--objective", choices=["synthetic", "estimator"], default="synthetic")
    s.add_argument("--delay-s", type=float, default=3.0,
                   help="synthetic: seconds each trial sleeps in place of training")
    s.add_argument("--sampler", choices=["controller", "tpe", "random"], default="controller")
    for s in sub.choices.values():
        s.add_argument("--json", required=True)
    a = p.parse_args()
    t0 = time.perf_counter()
    result = {"synthetic": cmd_synthetic, "estimator": cmd_estimator,
              "overhead": cmd_overhead, "throughput": cmd_throughput}[a.what](a)
    threads = os.environ.get("OMP_NUM_THREADS")
    prefix = (f"OMP_NUM_THREADS={threads} " if threads else "") + f"nice -n {os.nice(0)} "
    result.update(command=prefix + ".venv/bin/python " + " ".join(sys.argv),
                  wall_s=round(time.perf_counter() - t0), optuna=optuna.__version__,
                  machine=f"{platform.machine()} {os.cpu_count()} cores",
                  loadavg_at_end=[round(x, 2) for x in os.getloadavg()])
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs",)}, indent=1)[:6000])


if __name__ == "__main__":
    main()
