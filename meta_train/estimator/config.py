"""The dynamics estimator's configuration (training data, network, optimisation, export)."""

from __future__ import annotations

from dataclasses import dataclass

from meta_train.common.config import ConfigError
from meta_train.common.config import option as _f


@dataclass
class EstimatorConfig:
    """Dynamics estimator training and evaluation."""

    policy_run: str = _f("", "run directory of the policy whose rollouts train the estimator")
    policy_which: str = _f("best", "which checkpoint of the policy run: best, final, latest")
    train_episodes: int = _f(600, "training rollouts (training dynamics)")
    val_episodes: int = _f(100, "validation rollouts (training dynamics, other seeds)")
    heldout_episodes: int = _f(100, "rollouts on held-out dynamics (outside training ranges)")
    noise_std: float = _f(0.1, "exploration noise on the policy's actions (fraction of bound)")
    hidden: int = _f(64, "LSTM width")
    epochs: int = _f(60, "passes over the training rollouts")
    batch_episodes: int = _f(32, "episodes per gradient step")
    lr: float = _f(1e-3, "Adam learning rate")
    seed: int = _f(0, "seed")
    device: str = _f("auto", "torch device")
    out: str = _f("models/pusher_estimator.onnx", "exported estimator path (.onnx + .json)")
    report: str = _f("", "report JSON path (default: beside --out, <name>_report.json)")
    ood_fpr: float = _f(0.02, "false-positive rate of the OOD rule on training dynamics")

    def validate(self) -> None:
        if not self.policy_run:
            raise ConfigError("--policy-run is required")
        for name in ("train_episodes", "val_episodes", "heldout_episodes", "epochs",
                     "batch_episodes", "hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
