"""Build tiny exported models and write synthetic recorded runs for the bag tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from ros_helpers import meta_train_api

from meta_control import bags as B
from meta_control import topics as T

JOINTS = ["j1", "j2", "j3"]
MU_NAMES = ["puck_friction", "puck_mass"]
OBS_DIM = 2 * len(JOINTS) + 3
ACTION_SCALE = 0.05
PERIOD_NS = 40_000_000  # 25 Hz
T0_NS = 1_700_000_000_000_000_000
UNKNOWN_TOPIC = "/acme/widget"
UNKNOWN_TYPE = "acme_msgs/msg/Widget"


def _metadata(kind: str, joint_names: list[str] | None = None):
    from meta_control.runtime import ModelMetadata

    joints = joint_names or JOINTS
    n = len(joints)
    obs_dim = 2 * n + 3
    return ModelMetadata(
        kind=kind,
        env_id="PandaPushToy-v0",
        obs_terms=[
            {"name": "joint_positions", "size": n, "units": "rad"},
            {"name": "joint_velocities", "size": n, "units": "rad/s"},
            {"name": "puck_position", "size": 3, "units": "m"},
        ],
        obs_dim=obs_dim,
        goal_dim=2 if kind == "policy" else 0,
        act_dim=n,
        joint_names=list(joints),
        action_meaning="joint_position_offset",
        action_low=[-ACTION_SCALE] * n,
        action_high=[ACTION_SCALE] * n,
        joint_limits_low=[-2.8] * n,
        joint_limits_high=[2.8] * n,
        control_period_s=PERIOD_NS / 1e9,
        mu_names=list(MU_NAMES),
        mu_train_low=[0.2, 0.5],
        mu_train_high=[0.8, 2.0],
        obs_low=[-10.0] * obs_dim,
        obs_high=[10.0] * obs_dim,
        goal_low=[-5.0, -5.0] if kind == "policy" else [],
        goal_high=[5.0, 5.0] if kind == "policy" else [],
        source_commit="test",
    )


def make_models(
    folder: Path, joint_names: list[str] | None = None, obs_terms: list[dict] | None = None
) -> tuple[Path, Path]:
    """Export a tiny random recurrent policy and estimator; returns their .onnx paths.

    ``obs_terms`` replaces the metadata's observation terms (same total size), e.g. to name a
    term the nodes do not provide.
    """
    import torch

    mt = meta_train_api()
    torch.manual_seed(0)
    n = len(joint_names or JOINTS)
    obs_dim = 2 * n + 3
    actor = mt.RecurrentActor(obs_dim, 2, n, ACTION_SCALE, hidden=16).eval()
    est = mt.DynamicsEstimator(
        obs_dim, n, len(MU_NAMES), hidden=16, action_scale=ACTION_SCALE
    ).eval()
    folder.mkdir(parents=True, exist_ok=True)
    metas = [_metadata(kind, joint_names) for kind in ("policy", "estimator")]
    if obs_terms is not None:
        metas = [dataclasses.replace(m, obs_terms=obs_terms) for m in metas]
    p = mt.export_policy(actor, folder / "policy.onnx", metas[0])
    e = mt.export_estimator(est, folder / "estimator.onnx", metas[1])
    return Path(p), Path(e)


def write_run(
    path: Path,
    policy_path: Path,
    estimator_path: Path | None = None,
    *,
    storage: str = "mcap",
    episodes: int = 3,
    steps: int = 30,
    action_noise: float = 0.0,
    split_messages: int = 400,
    joint_names: list[str] | None = None,
    recorded_joint_order: list[str] | None = None,
    seed: int = 0,
    puck_gain: float = 0.12,
    unknown_type_ticks: int = 0,
) -> dict:
    """Simulate a lock-step controller with the real runtimes and record it like the demo.

    Per tick: /clock, /joint_states, /puck_pose, then the policy action, the command and the
    estimator outputs (published after the inputs they were computed from). The first
    ``unknown_type_ticks`` ticks also record one message on :data:`UNKNOWN_TOPIC`, of
    :data:`UNKNOWN_TYPE`, a type no typestore knows. Returns counts.
    """
    from meta_control.runtime import EstimatorRuntime, PolicyRuntime

    rng = np.random.default_rng(seed)
    joints = joint_names or JOINTS
    order = recorded_joint_order or joints
    perm = [joints.index(n) for n in order]
    policy = PolicyRuntime(policy_path)
    est = EstimatorRuntime(estimator_path) if estimator_path else None
    f = B.MessageFactory()
    cfg = B.BagWriterConfig(storage=storage, split_messages=split_messages, chunk_messages=50)
    t = T0_NS
    ticks = 0
    finals: list[float] = []
    with B.BagWriter(path, cfg) as w:
        if unknown_type_ticks:
            w.add_topic(UNKNOWN_TOPIC, UNKNOWN_TYPE, msgdef="int32 x", rihs01="RIHS01_" + "0" * 64)
        for _ in range(episodes):
            mu = rng.uniform(-1, 1, len(MU_NAMES))
            goal = rng.uniform(-0.15, 0.15, 2)
            q = rng.uniform(-0.3, 0.3, len(joints))
            dq = np.zeros(len(joints))
            puck = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 0.02])
            w.write(T.TOPIC_GOAL_POSE, t, f.pose_stamped(t, [goal[0], goal[1], 0.0]))
            w.write(T.TOPIC_TRUE_DYNAMICS, t + 1000, f.float64_array(mu, MU_NAMES))
            policy.reset()
            if est is not None:
                est.reset()
            prev_a = np.zeros(len(joints))
            for _ in range(steps):
                t += PERIOD_NS
                w.write(T.TOPIC_CLOCK, t, f.clock(t))
                if ticks < unknown_type_ticks:
                    w.write_raw(UNKNOWN_TOPIC, t, b"\x00\x01\x00\x00\x07\x00\x00\x00")
                # the receive (log) time lags the header stamp by 1.5 ms
                w.write(
                    T.TOPIC_JOINT_STATES,
                    t + 1_500_000,
                    f.joint_state(t, order, q[perm], dq[perm]),
                )
                w.write(T.TOPIC_PUCK_POSE, t + 1_600_000, f.pose_stamped(t, puck))
                last_puck = puck.copy()
                obs = np.concatenate([q, dq, puck])
                a = policy.step(obs, goal)
                rec_a = a + action_noise * rng.standard_normal(len(a))
                w.write(T.TOPIC_POLICY_ACTION, t + 2_000_000, f.float64_array(rec_a, joints))
                cmd = np.clip(q + a, -2.8, 2.8)
                w.write(T.TOPIC_COMMANDS, t + 2_100_000, f.float64_array(cmd))
                if est is not None:
                    m, s = est.step(obs, prev_a)
                    w.write(T.TOPIC_ESTIMATE, t + 2_200_000, f.float64_array(m, MU_NAMES))
                    w.write(T.TOPIC_ESTIMATE_STD, t + 2_200_000, f.float64_array(s, MU_NAMES))
                    w.write(T.TOPIC_OOD, t + 2_200_000, f.bool(est.ood(m, s)))
                prev_a = a
                dq = (cmd - q) / (PERIOD_NS / 1e9)
                q = cmd
                # the puck drifts toward the goal, so some episodes succeed
                puck[:2] += puck_gain * (goal - puck[:2])
                ticks += 1
            finals.append(float(np.linalg.norm(last_puck[:2] - goal)))
            t += 10 * PERIOD_NS
    return {"ticks": ticks, "messages": w.message_count, "final_distances": finals}
