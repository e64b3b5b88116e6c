"""MAML (Finn et al. 2017): meta-learned initial parameters that a few gradient steps adapt to
a new task; first-order MAML and Meta-SGD's learned step sizes (Li et al. 2017) by option.
``meta-train maml <task>``."""

from meta_train.maml.functional import adapt, gradient_update
from meta_train.maml.maml import MAML, Learner

__all__ = ["MAML", "Learner", "adapt", "gradient_update"]
