"""The dynamics estimator: regress the dynamics from the interaction history (``meta-train
estimator``)."""
