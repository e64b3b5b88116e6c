"""Neural architecture and hyperparameter search (Zoph & Le 2017) on Optuna: the controller
RNN as an Optuna sampler, search spaces users write, studies in Optuna storage shared by many
workers, and the best config written as a preset of the trainer searched over."""
