"""Placeholder replaced below."""
from dataclasses import dataclass


@dataclass
class EstimatorConfig:
    """Dynamics estimator training."""
