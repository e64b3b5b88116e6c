"""Configuration as data: a dataclass per algorithm, YAML presets, flags generated from fields.

Each field's ``help`` metadata becomes its ``--help`` text (CleanRL style). The resolved config is
saved beside every checkpoint and exported model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
VARIANTS = ("lstm", "ff", "ff_history", "ff_norand")
TEACHERS = ("privileged", "observing", "contact")  # sim.scripted.KNOWLEDGE


class ConfigError(ValueError):
    """A configuration value, preset or flag is invalid."""


def _f(default, help: str, **kw):  # noqa: A002 - mirrors argparse's name
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


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
    train_dynamics_emphasis: dict = _f({}, "training envs only: oversample bands inside the "
                                       "training ranges, {name: [low, high, probability]}, "
                                       "e.g. {\"puck_friction\": [0.1, 0.3, 0.25]}: with that "
                                       "probability the value comes from the band (prioritised "
                                       "task sampling); evaluations sample the ranges as the "
                                       "env defines them")
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
    bc_q_filter_informed_only: bool = _f(False, "with expert labels: Q-filter only the labels "
                                         "the teacher gave knowing the true dynamics (contact "
                                         "teacher: after the puck showed them; privileged: "
                                         "all) and clone the others at every step. The "
                                         "omniscient critic judges a label by the true "
                                         "dynamics, which the student cannot tell apart "
                                         "before the teacher could")
    uninformed_rl_weight: float = _f(1.0, "with expert labels: weight of the reinforcement "
                                     "term (-Q) of the actor's loss at the steps whose label "
                                     "the teacher gave before the dynamics showed (contact "
                                     "teacher: before it touched or saw the puck move). The "
                                     "omniscient critic judges those steps by dynamics the "
                                     "actor cannot know yet; 0 leaves them to cloning alone "
                                     "(with bc_q_filter_informed_only, which clones them at "
                                     "every step), 1 treats every step alike")
    expert_labels: bool = _f(False, "push envs: the privileged scripted pusher labels every "
                             "state of every collected episode with its action (DAgger, Ross "
                             "et al. 2011) and the behaviour-cloning loss uses these labels on "
                             "all episodes (original goals, Q-filtered) instead of the "
                             "demonstrations' executed actions")
    teacher: str = _f("privileged", "scripted teacher of the demonstrations and expert labels: "
                      "privileged (reads the true puck friction and damping), observing "
                      "(infers the friction from how far its own taps slide the puck: what a "
                      "history of observations tells, so a recurrent student can imitate it) "
                      "or contact (acts on a slippery prior until it has touched or seen the "
                      "puck move, on the true values from then on)")
    teacher_prior_friction: float = _f(0.3, "observing and contact teachers: the puck "
                                       "friction (coefficient, training range [0.1, 5]) they "
                                       "act on before the puck shows its own; a lower prior "
                                       "makes the first tap gentler")
    moved_fraction: float = _f(0.0, "share of each batch drawn from episodes in which the "
                               "achieved goal (the puck) moved; 0 = uniform sampling")
    omniscient_critic: bool = _f(True, "give the critic the true dynamics mu")
    time_aware_critic: bool = _f(False, "give the critic the share of the episode left as a "
                                 "privileged input and end its bootstrap at the time limit "
                                 "(Pardo et al. 2018); the actor is unchanged")
    absorbing_final_state: bool = _f(False, "with time_aware_critic: value the state an "
                                     "episode ends in as kept for ever (its reward / (1 - "
                                     "gamma)), so that where the puck ends weighs as it does "
                                     "in the success measure")
    actor_ema: float = _f(0.0, "decay per update of an exponential moving average of the "
                          "actor's weights, which the periodic evaluations, best/ and final/ "
                          "(the exported policy) then use; the online actor still explores "
                          "and trains; 0 disables it (e.g. 0.999: about the last 1,000 "
                          "updates)")
    actor_mu_aux: float = _f(0.0, "weight of an auxiliary loss on the recurrent actor: a "
                             "linear head on its LSTM output predicts the true normalised "
                             "dynamics mu at every step, so the history is pressed into an "
                             "estimate of them (training only; the head is not exported); "
                             "0 disables it")
    n_step: int = _f(1, "steps of reward summed before the critic's TD target bootstraps "
                     "(n-step returns of the stored actions, no off-policy correction)")
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
        if self.absorbing_final_state and not self.time_aware_critic:
            raise ConfigError("absorbing_final_state needs time_aware_critic (a critic that "
                              "does not see the time cannot tell the final state apart)")
        if not 0.0 <= self.actor_ema < 1.0:
            raise ConfigError(f"actor_ema must be in [0, 1), got {self.actor_ema}")
        if self.actor_mu_aux < 0:
            raise ConfigError(f"actor_mu_aux must be >= 0, got {self.actor_mu_aux}")
        if self.actor_mu_aux > 0 and self.variant != "lstm":
            raise ConfigError("actor_mu_aux needs the recurrent actor (variant lstm)")
        if self.n_step < 1:
            raise ConfigError(f"n_step must be >= 1, got {self.n_step}")
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
        if self.bc_q_filter_informed_only and not (self.expert_labels and self.bc_q_filter):
            raise ConfigError("bc_q_filter_informed_only needs expert_labels and bc_q_filter")
        if not 0.0 <= self.uninformed_rl_weight <= 1.0:
            raise ConfigError(f"uninformed_rl_weight must be in [0, 1], got "
                              f"{self.uninformed_rl_weight}")
        if self.uninformed_rl_weight < 1.0 and not (self.expert_labels
                                                    and self.teacher != "privileged"):
            raise ConfigError("uninformed_rl_weight < 1 needs expert_labels from a teacher that "
                              "acts before it knows the dynamics (observing or contact); the "
                              "privileged teacher's labels are all informed")
        if self.expert_labels and self.bc_weight <= 0:
            raise ConfigError("expert_labels are used only by the behaviour-cloning loss; "
                              "set bc_weight > 0")
        if self.noise_type not in ("gaussian", "ou"):
            raise ConfigError(f"noise_type must be 'gaussian' or 'ou', got {self.noise_type!r}")
        if self.her_strategy not in ("future", "final", "episode", "none"):
            raise ConfigError(f"unknown her_strategy {self.her_strategy!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_preset(name_or_path: str) -> dict[str, Any]:
    """Values of a YAML preset: a name under meta_train/presets/ or a path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESETS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise ConfigError(f"preset {name_or_path!r} not found (known presets: {known})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of field: value")
    return data


def build_config(cls, values: dict[str, Any]):
    """Instantiate a config dataclass from a mapping, rejecting unknown keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    cfg = cls(**values)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def add_dataclass_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One ``--flag`` per field, with the field's help; defaults stay None (unset)."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{help_text} (default {default})")
        elif f.type in ("dict", dict, "list", list):
            parser.add_argument(flag, type=json.loads, default=None,
                                help=f"{help_text}; JSON (default {default})")
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type, str)
            parser.add_argument(flag, type=typ, default=None,
                                help=f"{help_text} (default {default})")


def flags_to_values(args: argparse.Namespace, cls) -> dict[str, Any]:
    """Field values explicitly given on the command line."""
    out = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None:
            out[f.name] = v
    return out


def save_config(cfg, path: Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    tmp.replace(path)
