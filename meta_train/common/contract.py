"""The deployment contract of a model, read from the env it was trained in.

Observation terms, joint names and limits, action meaning, control period, dynamics names and
training ranges come from the env, never typed by hand, so the ROS side gets exactly what
training used. Every exporter (policies, dynamics estimators) fills its metadata from here.
"""

from __future__ import annotations

from typing import Any

from meta_train.common.policies import make_env_unwrapped


def make_contract_env(env_id: str, env_kwargs: dict[str, Any] | None = None):
    """The unwrapped push env whose contract a model follows.

    Raises:
        ValueError: ``env_id`` is not a push env with a deployment contract.
    """
    env = make_env_unwrapped(env_id, env_kwargs)
    for attr in ("obs_terms", "joint_names", "world", "dynamics_space"):
        if not hasattr(env, attr):
            env.close()
            raise ValueError(f"{env_id} is not a push env with a deployment contract "
                             f"(missing {attr!r}); only sim envs can be exported")
    return env


def contract_fields(env) -> dict[str, Any]:
    """Metadata fields that come from the env (everything but ranges and provenance)."""
    space = env._train_space
    return {
        "env_id": env.spec.id if env.spec else "",
        "obs_terms": env.obs_terms,
        "joint_names": env.joint_names,
        "action_meaning": "joint_position_offset",
        "joint_limits_low": env.world.joint_lower.tolist(),
        "joint_limits_high": env.world.joint_upper.tolist(),
        "control_period_s": env.control_period_s,
        "mu_names": space.names,
        "mu_train_low": space.train_low.tolist(),
        "mu_train_high": space.train_high.tolist(),
        "mu_laws": [p.law for p in space.params],
    }
