"""The RDPG + HER trainer's configuration: one dataclass, its presets and its checks.

Each field's ``help`` becomes its ``--help`` text; presets live in ``presets/`` beside this
file; the resolved config is saved beside every checkpoint (``config.yaml``, and in each
checkpoint's state) and in every exported model's sidecar.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meta_train.common.config import (
    ConfigError,
    build_config,
    drop_removed,
    load_preset,
)
from meta_train.common.config import option as _f
from meta_train.common.policies import REMOVED_OPTIONS, VARIANTS, ActorSpec

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
TEACHERS = ("privileged", "observing", "contact", "planning")  # sim.planner.TEACHERS


@dataclass
class RDPGConfig:
    """RDPG + HER with an omniscient critic (Peng et al. 2017) and its feedforward baselines."""

    env_id: str = _f("MetaPusherPush-v0", "gym id of a goal-conditioned env ('import sim' "
                     "registers the push envs)")
    variant: str = _f("lstm", "policy: lstm (recurrent, randomized), ff (feedforward, randomized),"
                      " ff_history (feedforward over the last `history` states and actions), "
                      "ff_norand (feedforward, nominal dynamics only)")
    history: int = _f(8, "frames stacked by the ff_history variant")
    env_kwargs: dict = _f({}, "extra keyword arguments for gym.make (e.g. dynamics_ranges)")
    kinematic_features: bool = _f(True, "push envs: networks compute the tool position by "
                                  "forward kinematics (inside the exported graph) and relative "
                                  "puck/goal vectors from the raw observation")
    seed: int = _f(0, "seed of networks, exploration and env resets")
    total_env_steps: int = _f(200_000, "stop after this many environment steps")
    max_wall_s: float = _f(0.0, "also stop once the run's training wall time (summed across "
                           "resumes) reaches this many seconds; the final policy is saved as "
                           "usual; 0 = no limit")
    n_envs: int = _f(2, "parallel rollout envs (one episode each per iteration)")
    vector: str = _f("sync", "vector env: sync (in-process) or async (one process per env)")
    collector: str = _f("inline", "inline: collect each iteration's episodes, then update (one "
                        "core); process: a collector process gathers the next iteration's "
                        "episodes with the actor of one iteration before while the learner "
                        "updates (two cores; needs vector sync)")
    updates_per_iteration: int = _f(16, "gradient steps after each collection of n_envs episodes")
    batch_episodes: int = _f(32, "episodes per gradient batch (whole episodes, BPTT)")
    buffer_episodes: int = _f(20_000, "replay capacity in episodes")
    warmup_episodes: int = _f(20, "episodes of uniformly random actions before learning")
    hidden: int = _f(64, "width of hidden layers and LSTMs (Peng: 128)")
    critic_hidden: int = _f(0, "width of the critic's layers and LSTM when it should differ "
                            "from the actor's (0 = hidden): the critic's passes dominate an "
                            "update's cost, and it sees the true dynamics")
    gamma: float = _f(0.98, "discount")
    tau: float = _f(0.05, "Polyak rate of the target networks (target <- (1-tau) target + tau)")
    actor_lr: float = _f(5e-4, "Adam learning rate of the actor")
    critic_lr: float = _f(5e-4, "Adam learning rate of the critic")
    lr_decay_from: float = _f(1.0, "fraction of total_env_steps after which both learning rates "
                              "follow a cosine down to lr_final x their initial value at the "
                              "end of the budget (1.0: constant rates)")
    lr_final: float = _f(0.1, "learning rates at the end of the budget, as a fraction of the "
                         "initial ones (with lr_decay_from < 1)")
    action_l2: float = _f(1.0, "penalty on squared normalised actions (HER paper)")
    noise_std: float = _f(0.2, "exploration noise scale, as a fraction of the action bound")
    noise_type: str = _f("ou", "exploration noise: gaussian (white) or ou (Ornstein-Uhlenbeck, "
                         "temporally correlated: joint-space white noise barely moves an arm)")
    ou_theta: float = _f(0.15, "mean reversion of the OU noise per step")
    random_eps: float = _f(0.2, "probability of a uniformly random action per step")
    her_strategy: str = _f("future", "HER goal strategy: future, final, episode or none")
    her_k: int = _f(4, "relabelled goals per real goal (k=4 -> relabel probability 0.8)")
    demo_episodes: int = _f(0, "push envs: scripted demonstrations (privileged scripted pusher "
                            "with exploration noise) added to the replay before learning "
                            "(Nair et al. 2018); they count towards total_env_steps")
    demo_fraction: float = _f(0.0, "probability per iteration of one more demonstration episode")
    bc_weight: float = _f(0.0, "weight of a behaviour-cloning loss on demonstration episodes, "
                          "applied only where the critic rates the demonstrated action above "
                          "the actor's (Q-filter, Nair et al. 2018); 0 disables it")
    bc_batch_episodes: int = _f(8, "demonstration episodes per behaviour-cloning batch")
    bc_q_filter: bool = _f(True, "clone only where the critic prefers the demonstrated action "
                           "(Q-filter); off: clone every demonstrated step")
    expert_labels: bool = _f(False, "push envs: the privileged scripted pusher labels every "
                             "state of every collected episode with its action (DAgger, Ross "
                             "et al. 2011) and the behaviour-cloning loss uses these labels on "
                             "all episodes (original goals, Q-filtered) instead of the "
                             "demonstrations' executed actions")
    teacher: str = _f("privileged", "scripted teacher of the demonstrations and expert labels: "
                      "privileged (reads the true puck friction and damping), observing "
                      "(infers the friction from how far its own taps slide the puck: what a "
                      "history of observations tells, so a recurrent student can imitate it), "
                      "contact (acts on a slippery prior until it has touched or seen the "
                      "puck move, on the true values from then on) or planning (privileged; "
                      "chooses each push by simulating candidates in the world itself: "
                      "sim.planner)")
    teacher_prior_friction: float = _f(0.3, "observing and contact teachers: the puck "
                                       "friction (coefficient, training range [0.1, 5]) they "
                                       "act on before the puck shows its own; a lower prior "
                                       "makes the first tap gentler")
    moved_fraction: float = _f(0.0, "share of each batch drawn from episodes in which the "
                               "achieved goal (the puck) moved; 0 = uniform sampling")
    omniscient_critic: bool = _f(True, "give the critic the true dynamics mu")
    actor_ema: float = _f(0.0, "decay per update of an exponential moving average of the "
                          "actor's weights, which the periodic evaluations, best/ and final/ "
                          "(the exported policy) then use; the online actor still explores "
                          "and trains; 0 disables it (e.g. 0.999: about the last 1,000 "
                          "updates)")
    clip_target: bool = _f(True, "clip TD targets to [-1/(1-gamma), 0] (rewards in [-1, 0])")
    eval_every: int = _f(25, "iterations between evaluations")
    eval_episodes: int = _f(20, "episodes per evaluation (deterministic policy)")
    checkpoint_every: int = _f(50, "iterations between checkpoints")
    keep_checkpoints: int = _f(2, "most recent checkpoints kept")
    device: str = _f("auto", "torch device: auto (cuda if available), cpu, cuda, cuda:N")
    torch_threads: int = _f(1, "CPU threads for torch (0 = torch default)")
    run_dir: str = _f("runs", "parent directory of runs")
    run_name: str = _f("", "run name (default env__algo__variant__seed__time)")
    progress: bool = _f(True, "show a progress bar")
    tensorboard: bool = _f(True, "also write every progress.csv row as TensorBoard scalars in "
                           "<run>/tensorboard (view with tensorboard --logdir runs)")

    def validate(self) -> None:
        """Raise :class:`ConfigError` on inconsistent values."""
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.vector not in ("sync", "async"):
            raise ConfigError(f"vector must be 'sync' or 'async', got {self.vector!r}")
        if self.collector not in ("inline", "process"):
            raise ConfigError(f"collector must be 'inline' or 'process', got {self.collector!r}")
        if self.collector == "process" and self.vector != "sync":
            raise ConfigError("collector 'process' steps its envs in its own process: use "
                              "vector 'sync' with it")
        for name in ("total_env_steps", "n_envs", "batch_episodes", "buffer_episodes",
                     "hidden", "eval_episodes", "eval_every", "checkpoint_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.max_wall_s >= 0.0:
            raise ConfigError(f"max_wall_s must be >= 0, got {self.max_wall_s}")
        if self.critic_hidden < 0:
            raise ConfigError(f"critic_hidden must be >= 0, got {self.critic_hidden}")
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(f"gamma must be in (0, 1), got {self.gamma}")
        if not 0.0 <= self.actor_ema < 1.0:
            raise ConfigError(f"actor_ema must be in [0, 1), got {self.actor_ema}")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"tau must be in (0, 1], got {self.tau}")
        if not 0.0 <= self.lr_decay_from <= 1.0 or not 0.0 <= self.lr_final <= 1.0:
            raise ConfigError(f"lr_decay_from and lr_final must be in [0, 1], got "
                              f"{self.lr_decay_from} and {self.lr_final}")
        if self.variant == "ff_history" and self.history < 1:
            raise ConfigError("ff_history needs history >= 1")
        if self.demo_episodes < 0 or not 0.0 <= self.demo_fraction <= 1.0:
            raise ConfigError("demo_episodes must be >= 0 and demo_fraction in [0, 1]")
        if self.bc_weight < 0 or self.bc_batch_episodes < 1:
            raise ConfigError("bc_weight must be >= 0 and bc_batch_episodes >= 1")
        if self.bc_weight > 0 and not (self.demo_episodes or self.demo_fraction
                                       or self.expert_labels):
            raise ConfigError("bc_weight > 0 needs demonstrations (demo_episodes or "
                              "demo_fraction) or expert_labels")
        if self.teacher not in TEACHERS:
            raise ConfigError(f"teacher must be one of {TEACHERS}, got {self.teacher!r}")
        if not self.teacher_prior_friction > 0.0:
            raise ConfigError(f"teacher_prior_friction must be > 0, got "
                              f"{self.teacher_prior_friction}")
        if self.expert_labels and self.bc_weight <= 0:
            raise ConfigError("expert_labels are used only by the behaviour-cloning loss; "
                              "set bc_weight > 0")
        if self.noise_type not in ("gaussian", "ou"):
            raise ConfigError(f"noise_type must be 'gaussian' or 'ou', got {self.noise_type!r}")
        if self.her_strategy not in ("future", "final", "episode", "none"):
            raise ConfigError(f"unknown her_strategy {self.her_strategy!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def actor_spec(self) -> ActorSpec:
        """The actor's architecture and env (what :func:`meta_train.common.policies.build_actor`
        needs)."""
        return ActorSpec(env_id=self.env_id, env_kwargs=dict(self.env_kwargs),
                         variant=self.variant, hidden=self.hidden, history=self.history,
                         kinematic_features=self.kinematic_features)


def preset_values(name_or_path: str) -> dict[str, Any]:
    """Values of an RDPG preset: a name under ``presets/`` or a path."""
    return load_preset(name_or_path, PRESETS_DIR)


def config_from_saved(values: dict[str, Any], what: str) -> RDPGConfig:
    """The config saved with a run (``config.yaml`` or a checkpoint's state), validated; a
    removed option at its "off" value is dropped, any other value refused
    (:data:`~meta_train.common.policies.REMOVED_OPTIONS`)."""
    return build_config(RDPGConfig, drop_removed(values, REMOVED_OPTIONS, what))
