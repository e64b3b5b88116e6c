"""Expert action labels: a scripted pusher labels the states the actor visits.

Demonstrations alone teach the actor what to do on the demonstrator's own state distribution;
once the actor drifts off it, nothing says how to recover (the compounding-error problem of
behaviour cloning). DAgger (Ross et al. 2011) fixes this by asking the expert what it would do in
the states the *learner* visits. Here the expert is a :class:`ScriptedPusher` (by default the
privileged one): it reads the true simulator state, so it can be queried at every step of every
training episode for free, and its label is stored with the episode. The actor never sees the
privileged state; like the omniscient critic, the expert is a training-time teacher only (a
teacher-student setup), and the recurrent actor has to infer from its history what the expert
read from the simulator.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sim.planner import make_teacher

INFO_KEY = "expert_action"
# Whether the label was given knowing the true dynamics (ScriptedPusher.knows_dynamics).
INFORMED_KEY = "expert_knows_dynamics"


class ExpertActionInfo(gym.Wrapper):
    """Adds ``info["expert_action"]``: the scripted pusher's action for the returned observation.

    The label of the observation returned by ``reset`` comes with ``reset``'s info, the label of
    the observation returned by ``step`` with that step's info, so a rollout reads the label of
    ``obs_t`` before choosing ``a_t``; ``info["expert_knows_dynamics"]`` says whether the label
    was given knowing the true dynamics. The scripted pusher is stateful (its phase); it follows
    whatever trajectory the executed actions produce. ``knowledge``: what the teacher knows of the
    puck's dynamics (``"privileged"``, ``"observing"`` or ``"contact"``; see
    :class:`ScriptedPusher`); ``prior_friction``: the observing and contact teachers' friction
    belief before the puck shows its own.
    """

    def __init__(
        self, env: gym.Env, knowledge: str = "privileged", prior_friction: float = 0.3
    ) -> None:
        super().__init__(env)
        if not hasattr(env.unwrapped, "world"):
            name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
            raise ValueError(f"{name}: expert labels need a push env (with a world)")
        self.expert = make_teacher(env.unwrapped, knowledge, prior_friction)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.expert.reset()
        return obs, {**info, **self._label(obs)}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, **self._label(obs)}

    def _label(self, obs: dict[str, np.ndarray]) -> dict[str, Any]:
        action = np.asarray(self.expert(obs), dtype=np.float32)
        return {INFO_KEY: action, INFORMED_KEY: self.expert.knows_dynamics}
