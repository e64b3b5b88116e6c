"""The controller RNN of Zoph & Le (2017) and its REINFORCE update.

An LSTM (2 layers of 35 units, weights uniform in [-0.08, 0.08]) emits the search space's
categorical decisions one per step: each step ends in a softmax over the choices of its
decision, and the choice sampled is embedded and fed to the next step. Decisions are grouped by
layer, in the order :class:`~meta_train.nas.space.SearchSpace` lists them; a decision type
shares its softmax and embedding across layers. Where the space has skip connections, each
layer ends in an anchor step: at layer ``i`` the probability that layer ``j < i`` is an input
is ``sigmoid(v . tanh(W_prev h_j + W_curr h_i))`` over the anchors' hidden states ``h``, and
the next step's input is the mean of the chosen anchors (ENAS's form, Pham et al. 2018).

REINFORCE with a baseline, over a batch of ``m`` strings ``a_k`` with rewards ``R_k``::

    grad J = 1/m sum_k grad log P(a_k) (R_k - b)

``b`` is an exponential moving average of earlier rewards; it leaves the expected gradient
unchanged, ``E[grad log P] b = b grad sum P = 0``, and lowers its variance.

The network runs in float64 on one CPU thread, so that every process computes the same
weights from the same history (the study's workers and a resumed study agree bit for bit).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from meta_train.nas.space import Decision, SearchSpace, index_of


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread for the block (then as before): the controller's arithmetic does
    not depend on how many threads a worker's trainer uses."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class Controller(nn.Module):
    """The controller of one search space.

    Args:
        space: the decisions it emits.
        hidden: units per LSTM layer (Zoph & Le: 35).
        num_layers: stacked LSTM layers (2).
        init_range: weights start uniform in ``[-init_range, init_range]`` (0.08).
        seed: seed of the initial weights.
    """

    def __init__(self, space: SearchSpace, hidden: int = 35, num_layers: int = 2,
                 init_range: float = 0.08, seed: int = 0) -> None:
        super().__init__()
        if hidden < 1 or num_layers < 1 or init_range <= 0:
            raise ValueError("hidden and num_layers must be >= 1 and init_range > 0")
        self.space, self.hidden = space, hidden
        sizes: dict[str, int] = {}
        for d in space.decisions:
            if d.kind == "choice":
                sizes[self.key(d)] = len(d.choices)
        self.embed = nn.ModuleDict({k: nn.Embedding(n, hidden) for k, n in sizes.items()})
        self.head = nn.ModuleDict({k: nn.Linear(hidden, n) for k, n in sizes.items()})
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.cells = nn.ModuleList([nn.LSTMCell(hidden, hidden) for _ in range(num_layers)])
        if space.skip:
            self.w_prev = nn.Linear(hidden, hidden, bias=False)
            self.w_curr = nn.Linear(hidden, hidden, bias=False)
            self.v = nn.Linear(hidden, 1, bias=False)
        self.double()
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range, generator=gen)

    @staticmethod
    def key(d: Decision) -> str:
        """The softmax a decision uses: its own (flat) or its type's (shared by layers)."""
        return f"layer_{d.short}" if d.layer is not None else f"flat_{d.name}"

    def _step(self, inp: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        new, x = [], inp
        for cell, s in zip(self.cells, state, strict=True):
            h, c = cell(x, s)
            new.append((h, c))
            x = h
        return x, new

    def run(self, params: Mapping[str, Any] | None = None,
            rng: np.random.Generator | None = None,
            fixed: Mapping[str, Any] | None = None,
            ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Emit one string: replay ``params`` (teacher forcing), or sample with ``rng``, taking
        the values in ``fixed`` where they are valid choices.

        Returns:
            ``(params, log P(params), entropy)``: the categorical decisions (skip connections
            included) and, as tensors with gradients, the string's log-probability and the
            sum of its steps' entropies.
        """
        if params is None and rng is None:
            raise ValueError("give params to replay or rng to sample")
        fixed = fixed or {}
        space = self.space
        zero = torch.zeros(1, self.hidden, dtype=torch.float64)
        state = [(zero, zero) for _ in self.cells]
        inp = self.start
        values: dict[str, Any] = {}
        logp = torch.zeros((), dtype=torch.float64)
        entropy = torch.zeros((), dtype=torch.float64)

        def pick(d: Decision, probs: np.ndarray) -> int:
            source = params if params is not None else fixed
            if d.name in source:
                idx = index_of(d.choices, source[d.name])
                if idx is not None:
                    return idx
                if params is not None:
                    raise ValueError(f"{d.name}={source[d.name]!r} is not one of "
                                     f"{list(d.choices)}")
            if rng is None:
                raise ValueError(f"params lack the active decision {d.name!r}")
            return int(rng.choice(len(probs), p=probs / probs.sum()))

        def choose(d: Decision) -> None:
            nonlocal inp, state, logp, entropy
            out, state = self._step(inp, state)
            lp = F.log_softmax(self.head[self.key(d)](out)[0], dim=-1)
            idx = pick(d, lp.detach().exp().numpy())
            logp = logp + lp[idx]
            entropy = entropy - (lp.exp() * lp).sum()
            values[d.name] = d.choices[idx]
            inp = self.embed[self.key(d)](torch.tensor([idx]))

        for d in space.flat:
            if d.kind == "choice" and d.active(values):
                choose(d)
        if space.count is not None and space.count.active(values):
            choose(space.count)
        anchors: list[torch.Tensor] = []
        for i in range(space.max_layers):
            if space.count is not None and not (space.count.name in values
                                                and values[space.count.name] > i):
                break
            for d in space.layer_decisions(i):
                if d.kind == "choice" and d.active(values):
                    choose(d)
            if not space.skip:
                continue
            out, state = self._step(inp, state)
            if i == 0:
                inp = self.start
            else:
                stack = torch.cat(anchors)  # [i, hidden]
                logits = self.v(torch.tanh(self.w_prev(stack) + self.w_curr(out)))[:, 0]
                p = torch.sigmoid(logits).detach().numpy()
                bits = []
                for j, d in enumerate(space.skip_decisions(i)):
                    source = params if params is not None else fixed
                    if d.name in source and isinstance(source[d.name], bool | np.bool_):
                        bits.append(bool(source[d.name]))
                    elif params is not None:
                        raise ValueError(f"params lack the skip connection {d.name!r}")
                    else:
                        bits.append(bool(rng.random() < p[j]))
                    values[d.name] = bits[-1]
                sel = torch.tensor(bits, dtype=torch.float64)
                logp = logp + (sel * F.logsigmoid(logits)
                               + (1 - sel) * F.logsigmoid(-logits)).sum()
                q = torch.sigmoid(logits)
                entropy = entropy - (q * F.logsigmoid(logits)
                                     + (1 - q) * F.logsigmoid(-logits)).sum()
                inp = (sel @ stack)[None] / (1.0 + sel.sum())
            anchors.append(out)
        return values, logp, entropy

    def log_prob(self, params: Mapping[str, Any]) -> torch.Tensor:
        """``log P(params)`` (with gradients)."""
        return self.run(params=params)[1]

    @torch.no_grad()
    def sample(self, rng: np.random.Generator,
               fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One string of categorical decisions."""
        return self.run(rng=rng, fixed=fixed)[0]


def reinforce_loss(controller: Controller, batch: Sequence[Mapping[str, Any]],
                   rewards: Sequence[float], baseline: float) -> torch.Tensor:
    """``-1/m sum_k log P(a_k) (R_k - b)``: its gradient is minus the REINFORCE estimate."""
    if len(batch) != len(rewards) or not batch:
        raise ValueError("give one reward per string, and at least one string")
    terms = [controller.log_prob(a) * (float(r) - baseline)
             for a, r in zip(batch, rewards, strict=True)]
    return -torch.stack(terms).sum() / len(batch)


def reinforce_gradient(controller: Controller, batch: Sequence[Mapping[str, Any]],
                       rewards: Sequence[float], baseline: float) -> np.ndarray:
    """The REINFORCE estimate of ``grad J`` (flattened over the controller's parameters)."""
    controller.zero_grad(set_to_none=True)
    (-reinforce_loss(controller, batch, rewards, baseline)).backward()
    grads = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(),
                                                                       dtype=p.dtype)
             for p in controller.parameters()]
    controller.zero_grad(set_to_none=True)
    return torch.cat(grads).numpy().copy()


class ControllerTrainer:
    """The controller, its Adam optimiser and the moving-average baseline: the whole state a
    study's history determines.

    Args:
        space: the search space.
        seed: seed of the initial weights.
        lr: Adam's learning rate (Zoph & Le: 6e-4).
        baseline_decay: ``b <- decay * b + (1 - decay) * R`` after each reward.
        hidden, num_layers, init_range: the network (see :class:`Controller`).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, lr: float = 6e-4,
                 baseline_decay: float = 0.95, hidden: int = 35, num_layers: int = 2,
                 init_range: float = 0.08) -> None:
        if not lr > 0 or not 0.0 <= baseline_decay < 1.0:
            raise ValueError("lr must be > 0 and baseline_decay in [0, 1)")
        with one_thread():
            self.controller = Controller(space, hidden, num_layers, init_range, seed)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.decay = baseline_decay
        self.baseline: float | None = None
        self.updates = 0

    def update(self, batch: Sequence[Mapping[str, Any]], rewards: Sequence[float]) -> float:
        """One REINFORCE step on a batch; then the baseline takes in its rewards in order.
        Before any reward the baseline is the first batch's mean. Returns the loss."""
        if self.baseline is None:
            self.baseline = float(np.mean(rewards))
        with one_thread():
            loss = reinforce_loss(self.controller, batch, rewards, self.baseline)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        for r in rewards:
            self.baseline = self.decay * self.baseline + (1.0 - self.decay) * float(r)
        self.updates += 1
        return float(loss.detach())

    def sample(self, rng: np.random.Generator,
               fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        with one_thread():
            return self.controller.sample(rng, fixed)

    def digest(self) -> str:
        """A hash of the weights, the optimiser's state and the baseline."""
        h = hashlib.sha256()
        for t in self.controller.state_dict().values():
            h.update(t.numpy().tobytes())
        for s in self.optimizer.state_dict()["state"].values():
            for v in s.values():
                h.update(v.numpy().tobytes() if torch.is_tensor(v) else repr(v).encode())
        h.update(repr(self.baseline).encode())
        return h.hexdigest()[:16]
