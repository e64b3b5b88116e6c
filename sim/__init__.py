"""Randomized-dynamics PyBullet push sims as goal-conditioned gymnasium envs.

Importing ``sim`` registers the env ids in :data:`ENV_IDS`, and the toy goal env
``PointGoal-v0`` (:mod:`sim.toy`, no physics) that tests use to check the trainers quickly.
"""

from gymnasium.envs.registration import register

ENV_IDS: list[str] = []

for _robot, _name in (("pusher", "Pusher"), ("panda", "Panda")):
    for _reward in ("sparse", "dense"):
        _suffix = "Dense" if _reward == "dense" else ""
        _id = f"Meta{_name}Push{_suffix}-v0"
        register(
            id=_id,
            entry_point="sim.envs:PushEnv",
            kwargs={"robot": _robot, "reward_type": _reward},
            max_episode_steps=None,  # the env truncates itself at its robot's episode length
        )
        ENV_IDS.append(_id)

register(id="PointGoal-v0", entry_point="sim.toy:PointGoalEnv")

__all__ = ["ENV_IDS"]
