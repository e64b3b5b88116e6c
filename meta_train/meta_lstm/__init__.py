"""The Meta-LSTM learned optimiser (Ravi & Larochelle 2017): an LSTM whose cell state is the
learner's parameters and whose gates are its learned step size and shrinkage.
``meta-train meta-lstm <task>``."""

from meta_train.meta_lstm.optimizer import MetaLSTMCell, MetaLSTMOptimizer, preprocess

__all__ = ["MetaLSTMCell", "MetaLSTMOptimizer", "preprocess"]
