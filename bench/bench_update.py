"""Gradient updates per second of the RDPG learner, CPU vs CUDA, at Peng-like sizes.

    python bench/bench_update.py --device cpu cuda --updates 20

Builds the trainer on the PointGoal toy env sized like the Panda task (7 action dims, 100-step
episodes; no simulation steps are timed, though importing the trainer needs PyBullet), fills the
replay with random episodes and times ``RDPGTrainer.update`` (critic + actor step over whole
episodes with BPTT, HER relabelling included) for several batch sizes and widths.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from meta_train.rdpg.config import RDPGConfig
from meta_train.rdpg.trainer import RDPGTrainer


def measure(device: str, batch: int, hidden: int, updates: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RDPGConfig(env_id="PointGoal-v0", env_kwargs={"n_dims": 7, "horizon": 100},
                         variant="lstm", hidden=hidden, batch_episodes=batch, n_envs=1,
                         device=device, run_dir=tmp, run_name="bench", progress=False,
                         torch_threads=threads, buffer_episodes=512)
        tr = RDPGTrainer(cfg)
        rng = np.random.default_rng(0)
        t, d = tr.horizon, tr.obs_dim
        for _ in range(256):
            ag = rng.uniform(-1, 1, (t + 1, d))
            tr.replay.add(ag, rng.uniform(-0.2, 0.2, (t, tr.act_dim)), ag,
                          rng.uniform(-1, 1, (t, d)), np.zeros(0))
        for _ in range(3):
            tr.update()
        if tr.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(updates):
            tr.update()
        if tr.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        tr.close()
        return updates / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", nargs="+", default=["cpu"])
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configs", nargs="+", default=["32x64", "128x128", "512x128"],
                   help="batch_episodes x hidden")
    args = p.parse_args()
    rows = {}
    for c in args.configs:
        batch, hidden = (int(x) for x in c.split("x"))
        for dev in args.device:
            rows[(c, dev)] = measure(dev, batch, hidden, args.updates, args.threads)
            print(f"{c:>8} {dev:>5}: {rows[(c, dev)]:8.2f} updates/s", flush=True)
    print("\n| batch episodes x hidden | " + " | ".join(f"{d} updates/s" for d in args.device)
          + " | transitions/s per update stream |")
    print("|---|" + "---|" * (len(args.device) + 1))
    for c in args.configs:
        batch = int(c.split("x")[0])
        vals = [rows[(c, d)] for d in args.device]
        print(f"| {c} | " + " | ".join(f"{v:.1f}" for v in vals)
              + f" | {max(vals) * batch * 100:,.0f} |")


if __name__ == "__main__":
    main()
