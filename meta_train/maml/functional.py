"""MAML's functional core: gradient steps on a dictionary of parameters that keep the graph.

``theta_i' = theta - alpha * grad L_Ti(f_theta)`` computed with
:func:`torch.autograd.grad` (``create_graph=True``) returns new tensors that are functions of
``theta``, so a loss of the adapted parameters back-propagates to ``theta`` through the update,
second derivatives included (MAML). With ``first_order`` the gradient is taken without a graph
and enters the update as a constant: the meta-gradient is then the query loss's gradient at
the adapted parameters (first-order MAML, Finn et al. 2017 section 5.2), and it differs from
MAML's by the term ``-alpha * H_support @ grad_query`` per step.

The parameters may carry a leading task dimension (``[B, ...]``,
:func:`~meta_train.common.meta_learning.expand_params`): the gradient of the sum of the tasks'
losses is then each task's own gradient, and one call adapts the whole meta-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

Params = dict[str, torch.Tensor]
StepSize = float | torch.Tensor | Mapping[str, torch.Tensor | float]


def gradient_update(params: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor | None],
                    lr: StepSize) -> Params:
    """``{name: p - lr * g}``; ``lr`` a number, a tensor, or one per parameter (Meta-SGD).
    A parameter without a gradient (unused by the loss) is kept as it is."""
    out = {}
    for name, p in params.items():
        g = grads.get(name)
        step = lr[name] if isinstance(lr, Mapping) else lr
        out[name] = p if g is None else p - step * g
    return out


def gradients(loss: torch.Tensor, params: Mapping[str, torch.Tensor],
              first_order: bool = False) -> Params:
    """``d loss / d params`` by name; with ``first_order`` detached (no graph, a constant)."""
    names = [n for n, p in params.items() if p.requires_grad]
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=not first_order,
                                allow_unused=True)
    return {n: g for n, g in zip(names, grads, strict=True) if g is not None}


def adapt(loss_fn: Callable[[Params], torch.Tensor], params: Mapping[str, torch.Tensor],
          steps: int, lr: StepSize, first_order: bool = False) -> list[Params]:
    """``steps`` gradient steps on ``loss_fn(params)``; returns the parameters after each step
    (the input first). Differentiable with respect to ``params`` (and ``lr``) unless
    ``first_order``, in which case each gradient is a constant."""
    out = [dict(params)]
    current = dict(params)
    for _ in range(steps):
        current = gradient_update(current, gradients(loss_fn(current), current, first_order), lr)
        out.append(current)
    return out
