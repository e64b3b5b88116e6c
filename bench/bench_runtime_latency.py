"""Single-step latency of the deployed policy runtime versus torch eager, side by side.

Builds a recurrent actor (128-unit LSTM by default) with non-trivial normaliser statistics,
exports it with :func:`meta_train.common.onnx_export.export_policy`, then times
``PolicyRuntime.step`` (input validation + onnxruntime, one thread) and the same step in torch
eager (``no_grad``, one thread) on identical inputs. Prints p50/p99/max in microseconds and the
torch/runtime ratio.

Reproduce::

    .venv/bin/python bench/bench_runtime_latency.py            # ~10 s
    .venv/bin/python bench/bench_runtime_latency.py --steps 20000 --hidden 256
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from meta_control.runtime import PolicyRuntime
from meta_train.common.networks import RecurrentActor
from meta_train.common.onnx_export import ModelMetadata, export_policy


@dataclass
class BenchConfig:
    """Benchmark settings."""

    obs_dim: int = 27
    """Observation size (7-joint arm: positions, velocities, end effector, ...)."""
    goal_dim: int = 3
    """Goal size (Cartesian target)."""
    act_dim: int = 7
    """Action size (one offset per joint)."""
    hidden: int = 128
    """LSTM and FC width."""
    steps: int = 5000
    """Timed steps per contender."""
    warmup: int = 200
    """Untimed steps before timing."""
    run: str = ""
    """A training run directory: time its trained actor (kinematic features included) and its
    export instead of a random network of the sizes above."""
    seed: int = 0
    """Seed for weights and inputs."""


def _metadata(cfg: BenchConfig, scale: float) -> ModelMetadata:
    return ModelMetadata(
        kind="policy",
        env_id="Bench-v0",
        obs_terms=[{"name": "state", "size": cfg.obs_dim, "units": "mixed"}],
        obs_dim=cfg.obs_dim,
        goal_dim=cfg.goal_dim,
        act_dim=cfg.act_dim,
        joint_names=[f"joint_{i}" for i in range(cfg.act_dim)],
        action_meaning="joint_position_offset",
        action_low=[-scale] * cfg.act_dim,
        action_high=[scale] * cfg.act_dim,
        joint_limits_low=[-3.0] * cfg.act_dim,
        joint_limits_high=[3.0] * cfg.act_dim,
        control_period_s=0.02,
        mu_names=[],
        mu_train_low=[],
        mu_train_high=[],
        obs_low=[-5.0] * cfg.obs_dim,
        obs_high=[5.0] * cfg.obs_dim,
        goal_low=[-1.0] * cfg.goal_dim,
        goal_high=[1.0] * cfg.goal_dim,
    )


def _time(fn: Callable[[int], object], steps: int, warmup: int) -> np.ndarray:
    for i in range(warmup):
        fn(i)
    samples = np.empty(steps, dtype=np.int64)
    gc.disable()
    try:
        for i in range(steps):
            t0 = time.perf_counter_ns()
            fn(i)
            samples[i] = time.perf_counter_ns() - t0
    finally:
        gc.enable()
    return samples / 1e3


def main(cfg: BenchConfig) -> None:
    """Run the benchmark and print a table."""

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    scale = 0.1
    rng = np.random.default_rng(cfg.seed)
    n = cfg.steps + cfg.warmup
    if cfg.run:
        from meta_train.common.policies import load_actor_from_run
        from meta_train.export.run import export_run_policy

        actor, _ = load_actor_from_run(cfg.run)
        cfg.obs_dim, cfg.goal_dim, cfg.act_dim = actor.obs_dim, actor.goal_dim, actor.act_dim
        cfg.hidden = actor.hidden
    else:
        actor = RecurrentActor(cfg.obs_dim, cfg.goal_dim, cfg.act_dim, scale, hidden=cfg.hidden)
        actor.obs_norm.update(torch.randn(1000, cfg.obs_dim))
        actor.goal_norm.update(torch.rand(1000, cfg.goal_dim) * 2 - 1)
    actor.eval()

    with tempfile.TemporaryDirectory() as tmp:
        if cfg.run:
            path = export_run_policy(cfg.run, Path(tmp) / "bench.onnx")
        else:
            path = export_policy(actor, Path(tmp) / "bench.onnx", _metadata(cfg, scale))
        runtime = PolicyRuntime(path)
        m = runtime.metadata
        if cfg.run:  # inputs inside the ranges the model accepts
            obs = rng.uniform(m.obs_low, m.obs_high, size=(n, cfg.obs_dim))
            goal = rng.uniform(m.goal_low, m.goal_high, size=(n, cfg.goal_dim))
        else:
            obs = rng.uniform(-3, 3, size=(n, cfg.obs_dim))
            goal = rng.uniform(-1, 1, size=(n, cfg.goal_dim))
        runtime_us = _time(lambda i: runtime.step(obs[i], goal[i]), cfg.steps, cfg.warmup)

    state = [actor.initial_state(1), torch.zeros(1, 1, cfg.act_dim)]

    @torch.no_grad()
    def torch_step(i: int) -> np.ndarray:
        o = torch.as_tensor(obs[i], dtype=torch.float32).view(1, 1, -1)
        g = torch.as_tensor(goal[i], dtype=torch.float32).view(1, 1, -1)
        action, state[0] = actor(o, g, state[1], state[0])
        state[1] = action
        return action.view(-1).double().numpy()

    torch_us = _time(torch_step, cfg.steps, cfg.warmup)

    print(
        f"recurrent actor obs={cfg.obs_dim} goal={cfg.goal_dim} act={cfg.act_dim} "
        f"hidden={cfg.hidden}, {cfg.steps} steps, 1 thread, torch {torch.__version__}"
    )
    print(f"{'':28s}{'p50 us':>10s}{'p99 us':>10s}{'max us':>10s}")
    rows = {"PolicyRuntime (onnxruntime)": runtime_us, "torch eager": torch_us}
    for name, us in rows.items():
        p50, p99 = np.percentile(us, [50, 99])
        print(f"{name:28s}{p50:10.1f}{p99:10.1f}{us.max():10.1f}")
    ratio50 = np.percentile(torch_us, 50) / np.percentile(runtime_us, 50)
    ratio99 = np.percentile(torch_us, 99) / np.percentile(runtime_us, 99)
    print(f"torch / runtime: p50 x{ratio50:.2f}, p99 x{ratio99:.2f}")


def _parse() -> BenchConfig:
    cfg = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in vars(cfg).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    return BenchConfig(**vars(parser.parse_args()))


if __name__ == "__main__":
    main(_parse())
