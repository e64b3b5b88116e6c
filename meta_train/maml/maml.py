"""The MAML wrapper: ``clone()`` a learner, ``adapt(loss)`` it, back-propagate its query loss.

As in learn2learn (Arnold et al. 2020)::

    maml = MAML(model, lr=0.01)                     # first_order=True: FOMAML
    opt = torch.optim.Adam(maml.parameters(), 1e-3)
    for support, query in tasks:
        learner = maml.clone()
        learner.adapt(loss_fn(learner(support.x), support.y))
        loss_fn(learner(query.x), query.y).backward()   # reaches the model's parameters
    opt.step()

A :class:`Learner` holds the adapted parameters as tensors of the graph (nothing is copied
into a module) and runs the model through :func:`torch.func.functional_call`. With
``meta_sgd`` each parameter has its own learned step size (Li et al. 2017, Meta-SGD),
initialised to ``lr``; it is a parameter of the wrapper, meta-trained with the model.
:meth:`MAML.adapt_batch` adapts a batch of tasks at once (parameters ``[B, ...]``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from meta_train.common.meta_learning import batched_call, expand_params
from meta_train.maml.functional import Params, adapt, gradient_update, gradients


def _key(name: str) -> str:
    return name.replace(".", "__")  # ParameterDict keys cannot hold dots


class MAML(nn.Module):
    """Meta-learned initial parameters of ``model`` and the inner update.

    Args:
        model: the learner (any module; its parameters are the meta-learned initialisation).
        lr: inner step size alpha (Meta-SGD: the initial value of every step size).
        first_order: first-order MAML (inner gradients are constants).
        meta_sgd: learn one step size per parameter element (Meta-SGD).
    """

    def __init__(self, model: nn.Module, lr: float, first_order: bool = False,
                 meta_sgd: bool = False) -> None:
        super().__init__()
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.module = model
        self.lr, self.first_order, self.meta_sgd = float(lr), bool(first_order), bool(meta_sgd)
        self.lrs = nn.ParameterDict(
            {_key(n): nn.Parameter(torch.full_like(p, lr)) for n, p in model.named_parameters()}
        ) if meta_sgd else None

    def step_sizes(self) -> float | dict[str, torch.Tensor]:
        """alpha, or Meta-SGD's step size of every parameter by name."""
        if self.lrs is None:
            return self.lr
        return {n: self.lrs[_key(n)] for n, _ in self.module.named_parameters()}

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.module(*inputs)

    def clone(self) -> Learner:
        """A learner starting from the meta-parameters (in the graph: its query loss
        back-propagates to them)."""
        return Learner(self, dict(self.module.named_parameters()))

    def batched_params(self, tasks: int) -> Params:
        """The meta-parameters viewed once per task ``[tasks, ...]`` (in the graph)."""
        return expand_params(dict(self.module.named_parameters()), tasks)

    def adapt_batch(self, loss_fn: Callable[[Params], torch.Tensor], params: Params, steps: int,
                    first_order: bool | None = None) -> list[Params]:
        """``steps`` inner steps on task-batched ``params``; ``loss_fn`` returns the sum over
        tasks of each task's mean loss. Returns the parameters after each step."""
        fo = self.first_order if first_order is None else first_order
        return adapt(loss_fn, params, steps, self.step_sizes(), fo)

    def call_batched(self, params: Params, *inputs: torch.Tensor) -> torch.Tensor:
        """The model with per-task ``params`` on per-task ``inputs``."""
        return batched_call(self.module, params, *inputs)


class Learner:
    """A model's adapted parameters (see :class:`MAML`); call it like the model."""

    def __init__(self, maml: MAML, params: Params) -> None:
        self.maml, self.params = maml, params

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        buffers = dict(self.maml.module.named_buffers())
        return functional_call(self.maml.module, {**self.params, **buffers}, inputs)

    def adapt(self, loss: torch.Tensor, first_order: bool | None = None) -> None:
        """One gradient step on ``loss`` (a function of this learner's outputs)."""
        fo = self.maml.first_order if first_order is None else first_order
        self.params = gradient_update(self.params, gradients(loss, self.params, fo),
                                      self.maml.step_sizes())

    def clone(self) -> Learner:
        """A copy that adapts on its own (sharing the graph so far)."""
        return Learner(self.maml, dict(self.params))
