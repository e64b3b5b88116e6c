"""Peer benchmark: Stable-Baselines3 DDPG / TQC + HerReplayBuffer on our push env, side by side.

The peer trains a feed-forward policy (no history, no dynamics input) on ``MetaPusherPush-v0``
(sparse reward, randomized training dynamics, the env truncates itself after 50 steps) for
``--total-env-steps`` env steps with ``--seed``, then rolls out the deterministic policy for
``--episodes`` episodes on training dynamics and on held-out dynamics
(``dynamics_mode='heldout'``) with reset seeds ``--eval-seed + i`` (10_000 + i: the seeds of
``meta-train evaluate``, so both policies see the same dynamics, starts and goals), and reports
success at 0.05 m and 0.07 m at the final step with 95% Wilson intervals, plus training env
steps/s.

With ``--ours-run RUN_DIR`` it also evaluates our RDPG run (its ``best`` checkpoint) with
``.venv/bin/meta-train evaluate RUN_DIR --episodes N --json ...`` in the project venv (a
subprocess) and prints one Markdown table with both rows and the ratios ours / peer.

SB3 and sb3-contrib live in their own venv, for this benchmark only (not a project dependency)::

    python3.11 -m venv bench/.venv-sb3 && echo '*' > bench/.venv-sb3/.gitignore
    bench/.venv-sb3/bin/pip install torch==2.13.0 stable-baselines3==2.9.2 sb3-contrib==2.9.2 \\
        gymnasium==1.4.0 pybullet==3.2.7 numpy==2.4.6 pyyaml
    bench/.venv-sb3/bin/pip install --no-deps -e .

(``torch==2.13.0`` pinned in the same command: the CPU wheel; unpinned, pip fetches a CUDA build.)

Run::

    bench/.venv-sb3/bin/python bench/bench_peer_sb3.py --algo ddpg --total-env-steps 100000 \\
        --seed 0 --episodes 100 --json out/peer_ddpg_s0.json --ours-run /tmp/runs/<run>

    # compare a saved peer model with another of our runs, no retraining:
    bench/.venv-sb3/bin/python bench/bench_peer_sb3.py --load out/peer_ddpg_s0.zip \\
        --json out/peer_ddpg_s0_eval.json --ours-run /tmp/runs/<run>
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OURS_CLI = REPO / ".venv" / "bin" / "meta-train"
ENV_ID = "MetaPusherPush-v0"


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The project's 95% Wilson interval (the peer venv has the project installed)."""
    from meta_train.common.evaluation import wilson_interval as project_wilson

    return project_wilson(successes, n)


def make_env(env_id: str, dynamics: str = "train"):
    import gymnasium as gym

    import sim  # noqa: F401  (registers the envs)

    kw = {"dynamics_mode": "heldout"} if dynamics == "heldout" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, **kw)


def build_model(args, vec_env):
    import numpy as np
    from stable_baselines3 import DDPG, HerReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise

    her = dict(goal_selection_strategy="future", n_sampled_goal=4)
    net = [args.hidden] * args.layers
    common = dict(
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=her,
        buffer_size=args.buffer_size,
        batch_size=args.batch_size,
        gamma=args.gamma,
        learning_rate=args.lr,
        tau=args.tau,
        learning_starts=args.learning_starts,
        train_freq=(args.train_freq, "step"),
        gradient_steps=args.gradient_steps,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    if args.algo == "ddpg":
        n_act = vec_env.action_space.shape[0]
        high = float(vec_env.action_space.high[0])
        noise = NormalActionNoise(np.zeros(n_act), np.full(n_act, args.noise_std * high))
        return DDPG("MultiInputPolicy", vec_env, action_noise=noise,
                    policy_kwargs=dict(net_arch=net), **common)
    from sb3_contrib import TQC

    return TQC("MultiInputPolicy", vec_env, policy_kwargs=dict(net_arch=net, n_critics=2),
               **common)


def train(args):
    """Train the peer; returns (model, obs normaliser or None, training stats)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    vec_env = DummyVecEnv([lambda: make_env(args.env_id, "train")])
    if args.normalize:
        # Observation (and goal) normalisation, as in HER's DDPG; rewards are left as they are.
        vec_env = VecNormalize(vec_env, norm_obs=True, norm_reward=False, clip_obs=5.0,
                               gamma=args.gamma)
    model = build_model(args, vec_env)
    vecnorm = vec_env if args.normalize else None
    callbacks = []
    if args.log_every:
        callbacks.append(_progress_callback(args.log_every))
    selector = None
    if args.select_every:
        selector = _selection_callback(args, vecnorm)
        callbacks.append(selector)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    model.learn(total_timesteps=args.total_env_steps, progress_bar=False,
                callback=callbacks or None)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    sel_s = selector.eval_s if selector else 0.0
    stats = {"env_steps": int(model.num_timesteps), "train_wall_s": round(wall, 1),
             "train_cpu_s": round(cpu, 1),
             "env_steps_per_s": round(model.num_timesteps / wall, 1),
             "selection_eval_s": round(sel_s, 1),
             "env_steps_per_s_excl_selection": round(model.num_timesteps / (wall - sel_s), 1),
             "gradient_updates": int(model._n_updates)}
    if selector and selector.best is not None:
        stats["best_env_steps"] = selector.best_steps
        stats["best_select_success_0.05"] = selector.best_success
        stats["selection_curve"] = selector.curve
    return model, vecnorm, stats, (selector.best if selector else None)


def _selection_callback(args, vecnorm):
    """Keep the best policy by success@0.05 on ``--select-episodes`` training-dynamics episodes
    (reset seeds 1_000_000 + i, disjoint from the test seeds) every ``--select-every`` steps:
    the same rule as our trainer's ``best`` checkpoint (eval_every 25 iterations = 2500 steps,
    20 episodes, seeds 1_000_000 + i, ``>=`` so later ties win)."""
    import copy

    from stable_baselines3.common.callbacks import BaseCallback

    class Select(BaseCallback):
        def __init__(self):
            super().__init__()
            self.best = None
            self.best_success = -1.0
            self.best_steps = 0
            self.eval_s = 0.0
            self.curve: list[list[float]] = []

        def _on_step(self) -> bool:
            if self.num_timesteps % args.select_every:
                return True
            t0 = time.perf_counter()
            self.model.policy.set_training_mode(False)
            r = evaluate(self.model, vecnorm, args.env_id, "train", args.select_episodes,
                         args.select_seed)
            self.model.policy.set_training_mode(True)
            s5 = r["success_0.05"]
            self.curve.append([self.num_timesteps, s5])
            if s5 >= self.best_success:
                self.best_success, self.best_steps = s5, self.num_timesteps
                self.best = (copy.deepcopy(self.model.policy.state_dict()),
                             copy.deepcopy(vecnorm.obs_rms) if vecnorm is not None else None)
            self.eval_s += time.perf_counter() - t0
            print(f"[peer] select @ {self.num_timesteps}: success@0.05 {s5:.2f} "
                  f"(best {self.best_success:.2f} @ {self.best_steps})", flush=True)
            return True

    return Select()


def _progress_callback(every: int):
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def __init__(self):
            super().__init__()
            self.t0 = time.perf_counter()
            self.succ: list[float] = []

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
                if done:
                    self.succ.append(float(info.get("is_success_0.05", 0.0)))
            if self.num_timesteps % every == 0:
                recent = self.succ[-100:]
                rate = sum(recent) / len(recent) if recent else float("nan")
                dt = time.perf_counter() - self.t0
                print(f"[peer] {self.num_timesteps} steps  {dt:.0f} s  "
                      f"{self.num_timesteps / dt:.1f} steps/s  "
                      f"train success@0.05 (last 100 ep, with noise) {rate:.2f}", flush=True)
            return True

    return Progress()


def evaluate(model, vecnorm, env_id: str, dynamics: str, episodes: int, seed: int) -> dict:
    """Deterministic rollouts with reset seeds ``seed + ep``, success at the final step."""
    import numpy as np

    env = make_env(env_id, dynamics).unwrapped  # as meta_train.common.evaluation.make_eval_env
    horizon = env.max_episode_steps
    s5, s7, dist = [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        for _ in range(horizon):
            o = {k: v[None] for k, v in obs.items()}
            if vecnorm is not None:
                o = vecnorm.normalize_obs(o)
            a, _ = model.predict(o, deterministic=True)
            obs, _, _, _, info = env.step(a[0])
        s5.append(bool(info["is_success_0.05"]))
        s7.append(bool(info["is_success_0.07"]))
        dist.append(float(info["distance"]))
    env.close()
    n = len(s5)
    return {"episodes": n, "success_0.05": float(np.mean(s5)), "success_0.07": float(np.mean(s7)),
            "ci95_0.05": list(wilson_interval(sum(s5), n)),
            "ci95_0.07": list(wilson_interval(sum(s7), n)),
            "final_distance_m": float(np.mean(dist))}


def evaluate_ours(run_dir: str, episodes: int, seed: int, json_path: str | None) -> dict:
    """``meta-train evaluate`` of our run in the project venv (a subprocess)."""
    out = json_path or os.path.join(tempfile.mkdtemp(), "ours.json")
    cmd = [str(OURS_CLI), "evaluate", run_dir, "--episodes", str(episodes), "--seed", str(seed),
           "--json", out]
    print("[ours] " + " ".join(cmd), flush=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    res = json.loads(Path(out).read_text())
    res["eval_wall_s"] = round(time.perf_counter() - t0, 1)
    res["run_dir"] = run_dir
    res.update(_our_run_budget(Path(run_dir)))
    return res


def _our_run_budget(run_dir: Path) -> dict:
    """Env steps of our run's ``best`` checkpoint and of its last logged row, where readable."""
    out = {}
    try:
        state = json.loads((run_dir / "best" / "state.json").read_text())
        for k in ("env_steps", "iteration", "success"):
            if k in state:
                out[f"best_{k}"] = state[k]
    except (OSError, ValueError):
        pass
    try:
        rows = [r.split(",") for r in
                (run_dir / "progress.csv").read_text().strip().splitlines()]
        head, last = rows[0], rows[-1]
        i_it, i_st = head.index("iteration"), head.index("env_steps")
        out["last_logged_env_steps"] = int(float(last[i_st]))
        out["last_logged_wall_s"] = float(last[head.index("wall_s")])
        for r in rows[1:]:  # env steps at the best checkpoint's iteration
            if "best_iteration" in out and int(float(r[i_it])) == out["best_iteration"]:
                out["best_env_steps"] = int(float(r[i_st]))
    except (OSError, ValueError, IndexError):
        pass
    return out


def _cell(r: dict, t: str) -> str:
    lo, hi = r[f"ci95_{t}"]
    return f"{r[f'success_{t}']:.2f} [{lo:.2f}, {hi:.2f}]"


def _ratio(a: float, b: float) -> str:
    if b == 0:
        return "n/a (peer 0)" if a > 0 else "n/a (both 0)"
    return f"{a / b:.2f}"


def markdown_table(peer_rows: list, ours: dict | None, ours_label: str) -> str:
    """Rows (label, {dynamics: result}); the ratios use the last peer row (its headline)."""
    lines = ["| policy | dynamics | success@0.05 [95% CI] | success@0.07 [95% CI] "
             "| final dist (m) |", "|---|---|---|---|---|"]
    rows = list(peer_rows) + ([(ours_label, ours)] if ours else [])
    peer = peer_rows[-1][1]
    for label, res in rows:
        for d in ("train", "heldout"):
            if d in res:
                r = res[d]
                lines.append(f"| {label} | {d} | {_cell(r, '0.05')} | {_cell(r, '0.07')} | "
                             f"{r['final_distance_m']:.3f} |")
    if ours:
        lines.append("")
        lines.append(f"| ratio ours / ({peer_rows[-1][0]}) | success@0.05 | success@0.07 |")
        lines.append("|---|---|---|")
        for d in ("train", "heldout"):
            if d in ours and d in peer:
                lines.append(
                    f"| {d} | {_ratio(ours[d]['success_0.05'], peer[d]['success_0.05'])} | "
                    f"{_ratio(ours[d]['success_0.07'], peer[d]['success_0.07'])} |")
    return "\n".join(lines)


def _save(model, vecnorm, path: str) -> None:
    """The model (.zip) and its observation normaliser (.pkl, without the env)."""
    import pickle

    model.save(path)
    if vecnorm is not None:
        training, venv = vecnorm.training, vecnorm.venv
        vecnorm.training, vecnorm.venv = False, None  # the PyBullet env is not picklable
        Path(path).with_suffix(".pkl").write_bytes(pickle.dumps(vecnorm))
        vecnorm.training, vecnorm.venv = training, venv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algo", choices=["ddpg", "tqc"], default="ddpg")
    ap.add_argument("--env-id", default=ENV_ID)
    ap.add_argument("--total-env-steps", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--eval-seed", type=int, default=10_000,
                    help="reset seeds eval-seed + i (meta-train evaluate's default)")
    ap.add_argument("--dynamics", nargs="+", default=["train", "heldout"])
    # Hyper-parameters: rl-baselines3-zoo's FetchPush/PandaPush TQC+HER scaled down to 1 core.
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--gamma", type=float, default=0.95)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--buffer-size", type=int, default=1_000_000)
    ap.add_argument("--learning-starts", type=int, default=1000)
    ap.add_argument("--train-freq", type=int, default=1, help="env steps between updates")
    ap.add_argument("--gradient-steps", type=int, default=1, help="updates per train-freq")
    ap.add_argument("--noise-std", type=float, default=0.2,
                    help="DDPG Gaussian action noise, fraction of the action bound (HER: 0.2)")
    ap.add_argument("--no-normalize", dest="normalize", action="store_false",
                    help="no running observation normalisation (VecNormalize)")
    ap.add_argument("--select-every", type=int, default=2500,
                    help="best-policy selection every N steps, as ours (0: final policy only)")
    ap.add_argument("--select-episodes", type=int, default=20)
    ap.add_argument("--select-seed", type=int, default=1_000_000)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=5000)
    ap.add_argument("--save", help="save the trained model (.zip) and its VecNormalize (.pkl)")
    ap.add_argument("--load", help="evaluate a saved model (.zip) instead of training")
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--ours-run", help="also evaluate our run dir (meta-train evaluate)")
    ap.add_argument("--ours-json", help="where to keep our run's evaluate JSON")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.torch_threads)
    import stable_baselines3

    result = {"peer": f"stable-baselines3 {stable_baselines3.__version__} {args.algo.upper()}"
                      " + HerReplayBuffer(future, 4)",
              "env_id": args.env_id, "seed": args.seed, "eval_seed": args.eval_seed,
              "machine": {"cpu_count": os.cpu_count(), "torch_threads": args.torch_threads,
                          "platform": platform.platform(), "python": platform.python_version(),
                          "torch": torch.__version__},
              "config": {k: v for k, v in vars(args).items() if k not in ("json",)}}
    best = None
    if args.load:
        from sb3_contrib import TQC
        from stable_baselines3 import DDPG

        cls = TQC if args.algo == "tqc" else DDPG
        from stable_baselines3.common.vec_env import DummyVecEnv

        # HerReplayBuffer needs an env at load time; buffer_size=1 keeps it from allocating 1e6.
        model = cls.load(args.load, device="cpu", buffer_size=1,
                         env=DummyVecEnv([lambda: make_env(args.env_id, "train")]))
        vecnorm = None
        pkl = Path(args.load).with_suffix(".pkl")
        if pkl.exists():
            import pickle

            vecnorm = pickle.loads(pkl.read_bytes())
            vecnorm.training = False
        result["loaded"] = args.load
        result["train"] = {"env_steps": int(model.num_timesteps)}
    else:
        model, vecnorm, stats, best = train(args)
        result["train"] = stats
        print(f"[peer] trained {stats['env_steps']} env steps in {stats['train_wall_s']} s "
              f"({stats['env_steps_per_s']} steps/s, {stats['gradient_updates']} updates)",
              flush=True)
        if args.save:
            _save(model, vecnorm, args.save)
    if vecnorm is not None:
        vecnorm.training = False
    t0 = time.perf_counter()
    name = f"SB3 {args.algo.upper()}+HER"
    steps = result["train"]["env_steps"]
    result["eval_final"] = {d: evaluate(model, vecnorm, args.env_id, d, args.episodes,
                                        args.eval_seed) for d in args.dynamics}
    which = f"loaded {Path(args.load).name}" if args.load else "final"
    peer_rows = [(f"{name} {which} @ {steps} steps", result["eval_final"])]
    result["eval"] = result["eval_final"]
    if best is not None:
        model.policy.load_state_dict(best[0])
        if vecnorm is not None:
            vecnorm.obs_rms = best[1]
        result["eval_best"] = {d: evaluate(model, vecnorm, args.env_id, d, args.episodes,
                                           args.eval_seed) for d in args.dynamics}
        result["eval"] = result["eval_best"]  # the headline: same selection rule as ours
        peer_rows.append((f"{name} best @ {result['train']['best_env_steps']} steps",
                          result["eval_best"]))
        if args.save:
            _save(model, vecnorm, str(Path(args.save).with_suffix("")) + "_best.zip")
    result["eval_wall_s"] = round(time.perf_counter() - t0, 1)
    _write(result, args.json)  # the peer's results are kept even if our side fails below
    ours = None
    if args.ours_run:
        try:
            ours = evaluate_ours(args.ours_run, args.episodes, args.eval_seed, args.ours_json)
            result["ours"] = ours
        except (subprocess.CalledProcessError, OSError, ValueError) as e:
            print(f"[ours] evaluation failed: {e}", file=sys.stderr, flush=True)
            result["ours_error"] = str(e)
    steps = ours.get("best_env_steps", "?") if ours else None
    table = markdown_table(peer_rows, ours, f"ours LSTM RDPG+HER best @ {steps} steps")
    result["table_md"] = table
    print(table)
    _write(result, args.json)
    if args.json:
        print(f"wrote {args.json}")
    return 1 if "ours_error" in result else 0


def _write(result: dict, path: str | None) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
