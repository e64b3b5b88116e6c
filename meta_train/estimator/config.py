"""The dynamics estimator's configuration: its data, network, optimisation, OOD rule and
report. Presets live in ``presets/`` beside this file (``meta-train estimator --preset``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meta_train.common.config import ConfigError, load_preset
from meta_train.common.config import option as _f

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
BAND_PARAMETERS_HELP = ("parameters (or groups) whose held-out bands the report measures, one "
                        "band beyond each edge of the training range, a third of its width")


@dataclass
class EstimatorConfig:
    """Dynamics estimator: data from a policy's interaction, training, OOD rule, report."""

    policy: str = _f("models/pusher_policy.onnx", "the policy whose interaction the estimator "
                     "learns from: an exported .onnx (run through the robot's runtime) or a "
                     "training run directory")
    policy_which: str = _f("final", "with a run directory: its checkpoint (best, final, latest)")
    episode_steps: int = _f(100, "control steps per episode of every dataset")
    train_episodes: int = _f(2000, "training rollouts (training ranges, with exploration)")
    val_episodes: int = _f(300, "validation rollouts (the policy's own, training ranges): the "
                           "OOD rule is calibrated on them")
    test_episodes: int = _f(400, "test rollouts (the policy's own, training ranges): the "
                            "identification table and the in-range flag rate")
    band_episodes: int = _f(100, "test rollouts per held-out band")
    band_parameters: list = _f(["puck_friction", "puck_damping", "puck_mass",
                                "controller_gain_scale", "table_height",
                                "action_timestep_rate"], BAND_PARAMETERS_HELP)
    noise_std: float = _f(0.1, "training data: Gaussian noise on the policy's actions "
                          "(fraction of the bound)")
    probe_fraction: float = _f(0.3, "training data: share of episodes that start with random "
                               "joint motions (a probe) before the policy acts")
    probe_steps: int = _f(10, "training data: steps of a probe")
    workers: int = _f(2, "processes collecting rollouts")
    data_dir: str = _f("runs/estimator_data", "where datasets are kept and reused (a dataset "
                       "is made again when its provenance differs)")
    hidden: int = _f(128, "LSTM width")
    tracking: bool = _f(True, "feed how far each joint fell short of its commanded offset")
    forward_weight: float = _f(1.0, "weight of the forward head's loss (it predicts the next "
                               "change of the observation; its error is OOD evidence)")
    epochs: int = _f(30, "passes over the training rollouts")
    batch_episodes: int = _f(64, "episodes per gradient step")
    lr: float = _f(2e-3, "Adam learning rate (cosine decay to 0 over the epochs)")
    seed: int = _f(0, "seed of the network, the batches and the datasets' reset seeds")
    device: str = _f("auto", "torch device: auto, cpu, cuda, cuda:N")
    torch_threads: int = _f(2, "CPU threads for torch (0 = torch default)")
    ood_fpr: float = _f(0.05, "share of the validation (in-range) episodes the OOD rule may "
                        "flag")
    ood_warmup: int = _f(10, "steps after reset in which the OOD flag stays off")
    report_k: int = _f(20, "steps after the first contact at which the OOD table's AUROC and "
                       "the headline error are read")
    out: str = _f("models/pusher_estimator.onnx", "exported estimator (.onnx + .json); the "
                  "report goes beside it (<name>_report.json and .md)")
    progress: bool = _f(True, "show progress")

    def validate(self) -> None:
        """Raise :class:`ConfigError` on inconsistent values."""
        if not self.policy:
            raise ConfigError("--policy is required (an .onnx policy or a run directory)")
        for name in ("episode_steps", "train_episodes", "val_episodes", "test_episodes",
                     "band_episodes", "epochs", "batch_episodes", "hidden", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.forward_weight > 0:
            raise ConfigError(f"forward_weight must be > 0, got {self.forward_weight}")
        if not 0.0 < self.ood_fpr < 1.0:
            raise ConfigError(f"ood_fpr must be in (0, 1), got {self.ood_fpr}")
        if not 0.0 <= self.probe_fraction <= 1.0 or self.noise_std < 0:
            raise ConfigError("probe_fraction must be in [0, 1] and noise_std >= 0")
        if not 0 <= self.ood_warmup < self.episode_steps or self.report_k < 0:
            raise ConfigError("ood_warmup must be in [0, episode_steps) and report_k >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def preset_values(name_or_path: str) -> dict[str, Any]:
    """Values of an estimator preset: a name under ``presets/`` or a path."""
    return load_preset(name_or_path, PRESETS_DIR)
