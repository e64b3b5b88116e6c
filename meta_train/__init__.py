"""Offline training of meta-learned, dynamics-adaptive controllers.

Layout (after Stable-Baselines3's ``common/`` plus one folder per algorithm):

* :mod:`meta_train.common`: what every method shares: configs and CLI helpers, devices, run
  directories and their learning curves, checkpoints, network building blocks (actors, critics,
  estimators, forward models, in-network kinematics), policies and their evaluation, rollout
  datasets, the deployment contract and ONNX export. It imports no method.
* one sub-package per method, each with its config, its trainer and its ``meta-train``
  subcommands (``cli.register``): :mod:`meta_train.rdpg` (RDPG + HER with an omniscient critic,
  its replay, collector, teacher labels and the Table II study), :mod:`meta_train.estimator`
  (the dynamics estimator), :mod:`meta_train.export` (runs to ONNX models). Methods import
  ``common`` and never each other; they meet through saved runs and exported models.
"""
