"""Env throughput of the push sims versus panda-gym's PandaPush-v3 and raw PyBullet, side by side.

For every env of :data:`sim.ENV_IDS` (randomization on and off) and for panda-gym's
``PandaPush-v3`` (run from its own virtual environment, see below), each measurement runs in a
fresh subprocess pinned to one core (``os.sched_setaffinity(0, {core})``) and reports:

* env steps/s: ``env.step`` with seeded uniform random actions, resets excluded from the timing,
  timed in thread CPU time by default (``--clock cpu``: a process sharing the core does not
  count, which a shared machine needs; ``--clock wall`` for wall-clock), wall-clock alongside;
* substeps per step and the physics settings read back from the client (timestep, solver
  iterations);
* the fraction of the step time spent *outside* ``stepSimulation``: a second pass wraps the
  client's ``stepSimulation`` on the instance with a clock accumulator;
* the raw PyBullet rate of the same scene: ``world.sim.step(20)`` (ours) or ``sim.step()``
  (panda-gym, 20 substeps) alone in a loop, i.e. the physical limit of an env step;
* reset cost (ms), and for our envs the share of it spent sampling and applying dynamics.

Rounds alternate the order of the contenders (ours / peer) and the table reports medians over the
rounds, since a shared machine is noisy. A last section times gymnasium vector envs (Sync with 1
and 2 envs in one process, Async with 2 envs in 2 worker processes), unpinned.

``MetaPandaPush-v0 rand, 20 substeps`` is our randomized env with Peng's random action timestep
pinned to the nominal 20 substeps (``world.sample_substeps`` patched on the instance in this
benchmark only): every other parameter is still randomized, and the physics settings equal
panda-gym's (20 substeps of 2 ms, 50 solver iterations). That is the row the targets apply to.

panda-gym lives in its own venv (default ``bench/.venv-peer``), created on first use with
``python -m venv`` + ``pip install panda-gym==3.0.7 pybullet==<ours>``; if that fails the script
prints the command and carries on without the peer.

Reproduce::

    .venv/bin/python bench/bench_sim.py            # full, ~3.5 min on 2 cores
    .venv/bin/python bench/bench_sim.py --quick    # Panda envs + peer, fewer steps, ~30-60 s
    .venv/bin/python bench/bench_sim.py --profile  # + cProfile of MetaPandaPush-v0 (rand) steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PEER_VENV = REPO / "bench" / ".venv-peer"
PEER_ID = "PandaPush-v3"
PEER_PACKAGE = "panda-gym==3.0.7"


# =============================================================================================
# Worker side: runs in a subprocess (our venv or the peer venv); imports only numpy/gymnasium
# at module level so that it also runs where ``sim`` is not importable.
# =============================================================================================
def _make_env(kind: str, env_id: str, kwargs: dict):
    import gymnasium as gym

    if kind == "ours":
        import sim  # noqa: F401  (registers the ids)
    else:
        import panda_gym  # noqa: F401
    return gym.make(env_id, **kwargs)


def _client_and_stepper(kind: str, env):
    """The BulletClient and a callable advancing the physics by one env step's worth (20)."""
    u = env.unwrapped
    if kind == "ours":
        world = u.world
        return world.sim.client, (lambda: world.sim.step(world.nominal_substeps))
    return u.sim.physics_client, u.sim.step


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
_clock = time.thread_time  # set per worker from spec["clock"]


class _StepSimTimer:
    """Wraps the object's physics-step callable on the instance with a clock accumulator.

    For panda-gym that is ``client.stepSimulation`` (BulletClient hands out a partial); our
    ``PyBullet`` wrapper binds ``step_simulation`` once and steps through it.
    """

    def __init__(self, client, attr: str | None = None) -> None:
        self.client = client
        self.attr = attr or ("step_simulation" if hasattr(client, "step_simulation")
                             else "stepSimulation")
        self.inner = getattr(client, self.attr)
        self.calls = 0
        self.seconds = 0.0
        pc = _clock
        inner = self.inner

        def timed(*a, **k):
            t0 = pc()
            r = inner(*a, **k)
            self.seconds += pc() - t0
            self.calls += 1
            return r

        # an instance attribute shadows BulletClient.__getattr__ (or our bound partial)
        setattr(client, self.attr, timed)

    def reset(self) -> None:
        self.calls, self.seconds = 0, 0.0

    def remove(self) -> None:
        if self.attr == "step_simulation":
            setattr(self.client, self.attr, self.inner)
        else:
            delattr(self.client, self.attr)


def _wrapper_overhead_s(n: int = 20000) -> tuple[float, float]:
    """Per call: the timing wrapper's cost that lands outside its clock span, and clock latency."""

    class _Dummy:
        def stepSimulation(self):  # noqa: N802 - mimics pybullet's name
            return None

    d = _Dummy()
    plain = d.stepSimulation
    best_plain = best_wrapped = best_clock = float("inf")
    for _ in range(5):
        t0 = _clock()
        for _ in range(n):
            plain()
        best_plain = min(best_plain, _clock() - t0)
        timer = _StepSimTimer(d)
        w = d.stepSimulation
        t0 = _clock()
        for _ in range(n):
            w()
        best_wrapped = min(best_wrapped, _clock() - t0)
        timer.remove()
        t0 = _clock()
        for _ in range(n):
            _clock()
        best_clock = min(best_clock, _clock() - t0)
    clock = best_clock / n
    return max(0.0, (best_wrapped - best_plain) / n - clock), clock


def _run_steps(env, n: int, seed: int) -> tuple[float, float, int]:
    """n env steps with random actions, resets untimed; returns (clock s, wall s, episodes)."""
    pc, wall = _clock, time.perf_counter
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(n)]
    t_steps = t_wall = 0.0
    episodes = 0
    for a in actions:
        w0 = wall()
        t0 = pc()
        _, _, term, trunc, _ = env.step(a)
        t_steps += pc() - t0
        t_wall += wall() - w0
        if term or trunc:
            env.reset()
            episodes += 1
    return t_steps, t_wall, episodes


def worker_throughput(spec: dict) -> dict:
    import numpy as np

    global _clock
    _clock = CLOCKS[spec.get("clock", "cpu")]
    if spec.get("core") is not None:
        os.sched_setaffinity(0, {spec["core"]})
    kind, env_id, n = spec["kind"], spec["env_id"], spec["steps"]
    env = _make_env(kind, env_id, spec.get("kwargs", {}))
    u = env.unwrapped
    if spec.get("pin_substeps"):
        u.world.sample_substeps = lambda rng: u.world.nominal_substeps
    client, physics_step = _client_and_stepper(kind, env)
    params = client.getPhysicsEngineParameters()
    env.reset(seed=spec["seed"])
    _run_steps(env, spec["warmup"], spec["seed"] + 1)

    # Pass A: plain env steps/s.
    t_a, wall_a, episodes = _run_steps(env, n, spec["seed"] + 2)

    # Pass B: same, with stepSimulation timed.
    timer = _StepSimTimer(u.world.sim if kind == "ours" else client)
    env.reset(seed=spec["seed"] + 3)
    timer.reset()
    t_b, _, _ = _run_steps(env, n, spec["seed"] + 4)
    inside, calls = timer.seconds, timer.calls
    timer.remove()
    # The wrapper's own cost: the part outside its clock span would count as "outside", one
    # clock latency per call lands inside. Calibrated on a no-op and removed.
    over_out, over_in = _wrapper_overhead_s()
    inside = max(0.0, inside - calls * over_in)
    t_b = max(inside, t_b - calls * (over_out + over_in))

    # Profile (optional), on the same kind of steps.
    profile_text = None
    if spec.get("profile"):
        import cProfile
        import io
        import pstats

        # keep stepSimulation as one named entry in the profile
        timer = _StepSimTimer(u.world.sim if kind == "ours" else client)
        env.reset(seed=spec["seed"] + 5)
        env.action_space.seed(spec["seed"] + 6)
        acts = [env.action_space.sample() for _ in range(n)]
        prof = cProfile.Profile()
        prof.enable()
        for a in acts:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                prof.disable()
                env.reset()
                prof.enable()
        prof.disable()
        timer.remove()
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats("tottime").print_stats(20)
        st.sort_stats("cumulative").print_stats(25)
        profile_text = buf.getvalue()

    # Raw physics of the same scene: 20 substeps per call, nothing else.
    # One zero action first, so that both envs command "hold the current pose" (panda-gym's
    # reset leaves the previous episode's motor targets in place).
    env.reset(seed=spec["seed"] + 7)
    env.step(np.zeros(env.action_space.shape, dtype=env.action_space.dtype))
    for _ in range(20):
        physics_step()
    n_raw = spec["raw_steps"]
    t0 = _clock()
    for _ in range(n_raw):
        physics_step()
    t_raw = _clock() - t0

    # Reset cost.
    pc = _clock
    reset_ms = []
    for i in range(spec["resets"]):
        t0 = pc()
        env.reset(seed=spec["seed"] + 100 + i)
        reset_ms.append((pc() - t0) * 1e3)
    dyn_ms = None
    if kind == "ours":
        rng = np.random.default_rng(spec["seed"])
        space, world = u.dynamics_space, u.world
        d = []
        for _ in range(spec["resets"]):
            t0 = pc()
            world.set_dynamics(space.sample(rng))
            d.append((pc() - t0) * 1e3)
        dyn_ms = statistics.median(d)
    env.close()
    return {
        "steps_per_s": n / t_a,
        "steps_per_s_wall": n / wall_a,
        "step_ms": 1e3 * t_a / n,
        "outside_frac": 1.0 - inside / t_b,
        "outside_ms": 1e3 * (t_b - inside) / n,
        "inside_ms": 1e3 * inside / n,
        # Physics-only rate met during the rollout, per 20 substeps (the in-situ physical limit).
        "rollout_physics_steps_per_s": n / inside * (calls / n) / 20.0,
        "substeps_per_step": calls / n,
        "wrapper_us": 1e6 * (over_out + over_in),
        "raw_steps_per_s": n_raw / t_raw,
        "reset_ms": statistics.median(reset_ms),
        "dyn_ms": dyn_ms,
        "timestep_s": params["fixedTimeStep"],
        "solver_iterations": params["numSolverIterations"],
        "episodes_in_pass": episodes,
        "profile": profile_text,
    }


def _vec_factory(kind: str, env_id: str, kwargs: dict):
    return _make_env(kind, env_id, kwargs)


def worker_vector(spec: dict) -> dict:
    import functools

    import gymnasium as gym

    kind, env_id, kw = spec["kind"], spec["env_id"], spec.get("kwargs", {})
    if kind == "ours":
        _make_env(kind, env_id, kw).close()  # make `sim` importable/registered before forking
    fn = functools.partial(_vec_factory, kind, env_id, kw)
    out = {}
    for name, cls, k in (
        ("sync_1env", gym.vector.SyncVectorEnv, 1),
        ("sync_2env", gym.vector.SyncVectorEnv, 2),
        ("async_2env", gym.vector.AsyncVectorEnv, 2),
    ):
        venv = cls([fn] * k)
        venv.reset(seed=spec["seed"])
        venv.action_space.seed(spec["seed"])
        acts = [venv.action_space.sample() for _ in range(spec["steps"] + spec["warmup"])]
        for a in acts[: spec["warmup"]]:
            venv.step(a)
        t0 = time.perf_counter()
        for a in acts[spec["warmup"] :]:
            venv.step(a)  # includes autoresets, as a training rollout does
        dt = time.perf_counter() - t0
        venv.close()
        out[name] = {
            "envs": k,
            "env_steps_per_s": k * spec["steps"] / dt,
            "ms_per_vec_step": 1e3 * dt / spec["steps"],
        }
    return out


def worker_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    fn = {"throughput": worker_throughput, "vector": worker_vector}[spec["mode"]]
    print("@@RESULT@@" + json.dumps(fn(spec)))


# =============================================================================================
# Driver side
# =============================================================================================
def _pybullet_version() -> str:
    from importlib.metadata import version

    return version("pybullet")


def ensure_peer_venv(venv: Path, create: bool) -> Path | None:
    """Python of the peer venv with panda-gym, creating it on first use; None if unavailable."""
    py = venv / "bin" / "python"
    check = [str(py), "-c", "import panda_gym, pybullet, gymnasium"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    cmd_venv = [sys.executable, "-m", "venv", str(venv)]
    cmd_pip = [
        str(py),
        "-m",
        "pip",
        "install",
        "-q",
        PEER_PACKAGE,
        f"pybullet=={_pybullet_version()}",
    ]
    shown = " && ".join(" ".join(c) for c in (cmd_venv, cmd_pip))
    if not create:
        print(f"[peer] no panda-gym venv at {venv}; create it with:\n  {shown}", file=sys.stderr)
        return None
    print(f"[peer] creating {venv} (panda-gym in its own venv): {shown}", file=sys.stderr)
    try:
        subprocess.run(cmd_venv, check=True)
        subprocess.run(cmd_pip, check=True, timeout=900)
        subprocess.run(check, check=True, capture_output=True)
    except (subprocess.SubprocessError, OSError) as e:
        print(f"[peer] could not create it ({e}); run by hand:\n  {shown}", file=sys.stderr)
        return None
    return py


def run_worker(python: str, spec: dict, timeout: float = 600) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
        env=env,
    )
    for line in p.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@") :])
    raise RuntimeError(f"worker failed ({spec['kind']} {spec['env_id']}):\n{p.stderr[-3000:]}")


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="Panda envs + peer only, fewer steps")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, quick 2)")
    ap.add_argument("--steps", type=int, default=None, help="env steps per pass (default 1500)")
    ap.add_argument("--core", type=int, default=0, help="core the one-core runs are pinned to")
    ap.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: thread CPU time (robust to other processes on the core, default); wall",
    )
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    ap.add_argument("--no-peer", action="store_true", help="skip panda-gym")
    ap.add_argument("--no-create-peer", action="store_true", help="do not create the peer venv")
    ap.add_argument("--no-vector", action="store_true", help="skip the vector-env section")
    ap.add_argument("--profile", action="store_true", help="cProfile MetaPandaPush-v0 (rand)")
    ap.add_argument("--json", type=Path, default=None, help="also write all results here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        worker_main(args.worker)
        return

    quick = args.quick
    rounds = args.rounds or (2 if quick else 3)
    steps = args.steps or (600 if quick else 1500)
    base = {
        "mode": "throughput",
        "steps": steps,
        "warmup": 50,
        "raw_steps": steps,
        "resets": 20 if quick else 50,
        "seed": 0,
        "core": args.core,
        "clock": args.clock,
    }

    ids = (
        ["MetaPandaPush-v0"]
        if quick
        else [
            "MetaPandaPush-v0",
            "MetaPandaPushDense-v0",
            "MetaPusherPush-v0",
            "MetaPusherPushDense-v0",
        ]
    )
    contenders: list[tuple[str, str, dict]] = []  # (label, python, spec)
    ours_py = sys.executable
    contenders.append(
        (
            "MetaPandaPush-v0 rand, 20 substeps",
            ours_py,
            {
                **base,
                "kind": "ours",
                "env_id": "MetaPandaPush-v0",
                "kwargs": {"randomize": True},
                "pin_substeps": True,
            },
        )
    )
    for env_id in ids:
        for rand in (True, False):
            contenders.append(
                (
                    f"{env_id} {'rand' if rand else 'nominal'}",
                    ours_py,
                    {**base, "kind": "ours", "env_id": env_id, "kwargs": {"randomize": rand}},
                )
            )
    peer_py = None
    if not args.no_peer:
        peer_py = ensure_peer_venv(args.peer_venv, create=not args.no_create_peer)
        if peer_py is not None:
            contenders.insert(
                0,
                (
                    f"{PEER_ID} (panda-gym 3.0.7)",
                    str(peer_py),
                    {**base, "kind": "peer", "env_id": PEER_ID, "kwargs": {}},
                ),
            )

    t_start = time.perf_counter()
    results: dict[str, list[dict]] = {lab: [] for lab, _, _ in contenders}
    for r in range(rounds):
        order = contenders if r % 2 == 0 else contenders[::-1]
        for lab, py, spec in order:
            res = run_worker(py, {**spec, "seed": 1000 * r})
            results[lab].append(res)
            print(
                f"[round {r + 1}/{rounds}] {lab:40s} {res['steps_per_s']:7.0f} steps/s  "
                f"outside {100 * res['outside_frac']:4.1f}%",
                file=sys.stderr,
            )

    profile_text = {}
    if args.profile:
        res = run_worker(
            ours_py,
            {
                **base,
                "kind": "ours",
                "env_id": "MetaPandaPush-v0",
                "kwargs": {"randomize": True},
                "profile": True,
            },
        )
        profile_text["MetaPandaPush-v0 rand"] = res["profile"]
        if peer_py is not None:
            res = run_worker(
                str(peer_py), {**base, "kind": "peer", "env_id": PEER_ID, "profile": True}
            )
            profile_text[PEER_ID] = res["profile"]

    vec: dict[str, dict] = {}
    if not args.no_vector:
        vspec = {"mode": "vector", "steps": 300 if quick else 800, "warmup": 20, "seed": 0}
        vec["MetaPandaPush-v0 rand"] = run_worker(
            ours_py,
            {**vspec, "kind": "ours", "env_id": "MetaPandaPush-v0", "kwargs": {"randomize": True}},
        )
        if not quick:
            vec["MetaPusherPush-v0 rand"] = run_worker(
                ours_py,
                {
                    **vspec,
                    "kind": "ours",
                    "env_id": "MetaPusherPush-v0",
                    "kwargs": {"randomize": True},
                },
            )
        if peer_py is not None:
            vec[PEER_ID] = run_worker(str(peer_py), {**vspec, "kind": "peer", "env_id": PEER_ID})

    med = {
        lab: {
            k: (
                statistics.median(x[k] for x in rs)
                if isinstance(rs[0][k], (int, float))
                else rs[0][k]
            )
            for k in rs[0]
            if k != "profile"
        }
        for lab, rs in results.items()
    }
    wall = time.perf_counter() - t_start
    peer_lab = next((lab for lab in results if lab.startswith(PEER_ID)), None)
    ratios = (
        {lab: round_ratios(results, lab, peer_lab) for lab in results if lab != peer_lab}
        if peer_lab is not None
        else {}
    )
    report(med, results, vec, peer_py is not None, rounds, steps, args, wall, profile_text,
           ratios)
    if args.json:
        out = {
            "command": " ".join(["python bench/bench_sim.py", *sys.argv[1:]]),
            "machine": machine(),
            "median": med,
            "ratios_vs_peer": ratios,
            "rounds": results,
            "vector": vec,
        }
        args.json.write_text(json.dumps(out, indent=1, default=str))


TARGET = "MetaPandaPush-v0 rand, 20 substeps"
"""The row the sim targets apply to (randomized, physics equal to panda-gym's)."""

T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
        10: 2.23, 11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 19: 2.09, 29: 2.05}
"""Two-sided 95% Student t quantiles by degrees of freedom (1.96 beyond the table)."""


def round_ratios(results: dict[str, list[dict]], lab: str, peer_lab: str) -> dict:
    """Per-round ratio of ``lab``'s env steps/s to the peer's (the two ran back to back in
    each round) and a 95% interval of their geometric mean (t on the log ratios)."""
    import math

    pairs = zip(results[lab], results[peer_lab], strict=True)
    ratios = [a["steps_per_s"] / b["steps_per_s"] for a, b in pairs]
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    n = len(logs)
    if n > 1:
        df = n - 1
        t = T975.get(df, T975[max(k for k in T975 if k <= df)] if df < 30 else 1.96)
        half = t * statistics.stdev(logs) / math.sqrt(n)
    else:
        half = float("nan")
    return {
        "per_round": ratios,
        "geomean": math.exp(mean),
        "ci95": [math.exp(mean - half), math.exp(mean + half)],
        "n_rounds": n,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def report(
    med, results, vec, have_peer, rounds, steps, args, wall, profile_text, ratios
) -> None:
    peer_lab = next((lab for lab in med if lab.startswith(PEER_ID)), None)
    peer_sps = med[peer_lab]["steps_per_s"] if have_peer else None
    cmd = "  ".join(["python bench/bench_sim.py", *[a for a in sys.argv[1:]]]).strip()
    print(f"\n## Env throughput, one core (pinned to core {args.core})\n")
    print(
        f"Machine: {machine()}. Command: `{cmd}`. Median of {rounds} interleaved rounds, "
        f"{steps} timed steps per pass, random actions, resets not timed; times are "
        f"{'thread CPU time' if args.clock == 'cpu' else 'wall-clock time'} "
        f"(`--clock {args.clock}`), the wall-clock steps/s are shown alongside.\n"
    )
    print(
        "| env | substeps/step | dt, solver it. | env steps/s (min-max) | wall steps/s | "
        "vs PandaPush-v3 | "
        "raw physics loop, steps/s | env / raw | physics-only in rollout, steps/s | "
        "outside stepSimulation | ms outside / step | reset ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lab, m in med.items():
        ratio = f"{m['steps_per_s'] / peer_sps:.2f}x" if peer_sps else "-"
        spread = [x["steps_per_s"] for x in results[lab]]
        print(
            f"| {lab} | {m['substeps_per_step']:.2f} | {1e3 * m['timestep_s']:g} ms, "
            f"{m['solver_iterations']:.0f} | {m['steps_per_s']:.0f} "
            f"({min(spread):.0f}-{max(spread):.0f}) | {m['steps_per_s_wall']:.0f} | {ratio} | "
            f"{m['raw_steps_per_s']:.0f} | "
            f"{m['steps_per_s'] / m['raw_steps_per_s']:.2f} | "
            f"{m['rollout_physics_steps_per_s']:.0f} | {_pct(m['outside_frac'])} | "
            f"{m['outside_ms']:.3f} | {m['reset_ms']:.2f} |"
        )
    print(
        "\nraw physics loop: `world.sim.step(20)` (panda-gym: `sim.step()`, 20 substeps) alone "
        "in a loop after a reset and one zero action, the arm holding still; physics-only in "
        "rollout: 20 substeps at the `stepSimulation` time measured during the random-action "
        "rollout; outside: 1 - (time in `stepSimulation`) / (time in `env.step`), less the "
        "timing wrapper's own cost (calibrated on a no-op, "
        f"{min(m['wrapper_us'] for m in med.values()):.2f}-"
        f"{max(m['wrapper_us'] for m in med.values()):.2f} us per substep)."
    )

    print("\n## Reset cost (ms, median)\n")
    print(
        "| env | reset, randomized | reset, nominal | difference | of which sample + "
        "set_dynamics (rand) |"
    )
    print("|---|---:|---:|---:|---:|")
    for lab in med:
        if lab.endswith(" rand") and lab.replace(" rand", " nominal") in med:
            a, b = med[lab], med[lab.replace(" rand", " nominal")]
            print(
                f"| {lab[:-5]} | {a['reset_ms']:.2f} | {b['reset_ms']:.2f} | "
                f"{a['reset_ms'] - b['reset_ms']:+.2f} | {a['dyn_ms']:.3f} |"
            )
    if have_peer:
        print(f"| {peer_lab} | - | {med[peer_lab]['reset_ms']:.2f} | - | - |")

    if vec:
        print(f"\n## Vector envs (not pinned; {os.cpu_count()} CPUs)\n")
        print(
            "| env | Sync, 1 env | Sync, 2 envs (1 process) | Async, 2 envs (2 workers) | "
            "Async / Sync-1 |"
        )
        print("|---|---:|---:|---:|---:|")
        for lab, v in vec.items():
            s1, s2, a2 = (
                v[k]["env_steps_per_s"] for k in ("sync_1env", "sync_2env", "async_2env")
            )
            ms = {k: v[k]["ms_per_vec_step"] for k in v}
            print(
                f"| {lab} | {s1:.0f} env steps/s ({ms['sync_1env']:.2f} ms/step) | {s2:.0f} "
                f"({ms['sync_2env']:.2f} ms) | {a2:.0f} ({ms['async_2env']:.2f} ms) | "
                f"{a2 / s1:.2f}x |"
            )

    if TARGET in med:
        m = med[TARGET]
        print("\n## Targets\n")
        if TARGET in ratios:
            r = ratios[TARGET]
            lo, hi = r["ci95"]
            print(
                f"- env steps/s >= 1.1x PandaPush-v3 at equal physics: {r['geomean']:.2f}x "
                f"[{lo:.2f}, {hi:.2f}] (geometric mean of {r['n_rounds']} per-round ratios, "
                f"95% t interval) -> {'PASS' if lo >= 1.1 else 'MISS'}"
            )
        print(
            f"- time outside stepSimulation < 15%: {_pct(m['outside_frac'])} -> "
            f"{'PASS' if m['outside_frac'] < 0.15 else 'MISS'}"
        )
    print(f"\n(wall time {wall:.0f} s)")
    for lab, text in (profile_text or {}).items():
        print(f"\n## cProfile, {lab} (env.step only; stepSimulation appears as `timed`)\n\n```")
        print(text.rstrip())
        print("```")


if __name__ == "__main__":
    main()
