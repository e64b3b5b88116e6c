"""Search spaces users write: discrete decisions, flat or grouped by layer (Zoph & Le 2017).

A space is a mapping (a YAML block of a NAS preset)::

    decisions:                      # flat decisions, in the order the controller emits them
      - {name: variant, choices: [lstm, ff_history]}
      - {name: history, choices: [4, 8, 16], when: {variant: ff_history}}   # conditional
      - {name: lr, low: 1.0e-4, high: 1.0e-2, log: true, bins: 5}          # discretised
      - {name: tau, low: 0.01, high: 0.1}                                   # continuous
    layers:                         # optional: a string of layers after the flat decisions
      count: {name: n_layers, choices: [1, 2, 3, 4]}   # or a fixed number: count: 3
      decisions:
        - {name: width, choices: [16, 32, 64]}
        - {name: kernel, choices: [1, 3, 5], when: {width: [32, 64]}}     # same-layer names
      skip: true                    # layer i may take any earlier layer as input (anchors)
      field: layers                 # the config field that receives the list of layers

Each decision is an Optuna parameter (layer decisions are named ``layer<i>.<name>``, skip
connections ``layer<i>.skip<j>``): a categorical one for ``choices`` and for a range with
``bins`` (a log- or linearly spaced grid, 4 significant digits; ``int: true`` rounds to
integers), a float (or integer) one for a range without ``bins``. The controller emits every
categorical decision; a continuous one it hands to another sampler (``sample_independent``).

A decision with ``when`` exists only where every named earlier decision took one of the listed
values (an inactive decision is not suggested, not emitted and not in the config); the layers
beyond ``count`` are inactive likewise. Conditions may name categorical decisions only.

The values of a trial become config values (:meth:`SearchSpace.structure`): each flat decision
by its name, the count by its name, and the layers as a list of mappings under ``field``, each
with its layer's decisions by their short names and ``inputs``, the earlier layers it takes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from meta_train.common.config import ConfigError

SPACE_KEYS = ("decisions", "layers")
DECISION_KEYS = ("name", "choices", "low", "high", "log", "bins", "int", "when", "help")
LAYER_KEYS = ("count", "decisions", "skip", "field")
MAX_CHOICES = 256
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SpaceError(ConfigError):
    """A search-space description is invalid."""


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind (``True`` is not ``1``; ``64`` is ``64.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def index_of(choices: Sequence[Any], value: Any) -> int | None:
    """The index of ``value`` among ``choices`` (kind-aware), or None."""
    for i, c in enumerate(choices):
        if _same(c, value):
            return i
    return None


@dataclass(frozen=True)
class Decision:
    """One parameter of a space.

    Attributes:
        name: the Optuna parameter name (``layer<i>.<short>`` inside layers).
        short: the name in its layer's mapping (``name`` for a flat decision).
        kind: ``choice`` (categorical), ``skip`` (a skip connection, False/True) or
            ``continuous`` (left to another sampler).
        choices: the values of a categorical decision (empty for a continuous one).
        low, high, log, integer: the range of a continuous decision.
        when: ``(parameter name, allowed values)`` pairs that must all hold.
        layer: the layer index (None for a flat decision).
    """

    name: str
    short: str
    kind: str
    choices: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False
    when: tuple = ()
    layer: int | None = None

    @property
    def discrete(self) -> bool:
        return self.kind != "continuous"

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution of this parameter."""
        if self.discrete:
            return CategoricalDistribution(self.choices)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether every condition holds for the values decided so far."""
        return all(name in values and index_of(allowed, values[name]) is not None
                   for name, allowed in self.when)


def _grid(low: float, high: float, bins: int, log: bool, integer: bool) -> tuple:
    pts = np.geomspace(low, high, bins) if log else np.linspace(low, high, bins)
    if integer:
        out: list = []
        for p in pts:
            v = int(round(p))
            if v not in out:
                out.append(v)
        return tuple(out)
    return tuple(float(f"{p:.4g}") for p in pts)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _parse_decision(raw: Any, where: str) -> dict[str, Any]:
    """The checked fields of one decision's mapping (conditions still by short name)."""
    if not isinstance(raw, Mapping):
        raise SpaceError(f"{where}: a decision must be a mapping with a name, got {raw!r}")
    unknown = sorted(set(raw) - set(DECISION_KEYS))
    if unknown:
        raise SpaceError(f"{where}: unknown keys {unknown} (a decision has "
                         f"{', '.join(DECISION_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpaceError(f"{where}: name must be an identifier (letters, digits, _), got "
                         f"{name!r}")
    where = f"{where} ({name})"
    when = raw.get("when", {}) or {}
    if not isinstance(when, Mapping):
        raise SpaceError(f"{where}: when must map earlier decisions to allowed values")
    out: dict[str, Any] = {"name": name, "when": {k: _as_list(v) for k, v in when.items()}}
    has_range = "low" in raw or "high" in raw
    if "choices" in raw:
        if has_range or "bins" in raw or "log" in raw or "int" in raw:
            raise SpaceError(f"{where}: give either choices or a range (low, high), not both")
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: choices must be a non-empty list")
        for c in choices:
            if c is not None and not isinstance(c, bool | int | float | str):
                raise SpaceError(f"{where}: choice {c!r} is not a number, string, boolean or "
                                 f"null (Optuna stores only those)")
            if isinstance(c, float) and not math.isfinite(c):
                raise SpaceError(f"{where}: choice {c!r} is not finite")
        if any(index_of(choices[:i], c) is not None for i, c in enumerate(choices)):
            raise SpaceError(f"{where}: choices repeat a value: {choices}")
        if len(choices) > MAX_CHOICES:
            raise SpaceError(f"{where}: {len(choices)} choices, at most {MAX_CHOICES}")
        out.update(kind="choice", choices=tuple(choices))
        return out
    if not has_range:
        raise SpaceError(f"{where}: give choices, or a range with low and high")
    low, high = raw.get("low"), raw.get("high")
    integer, log = bool(raw.get("int", False)), bool(raw.get("log", False))
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise SpaceError(f"{where}: low and high must be finite numbers, got {low!r} and "
                             f"{high!r}")
    if not low < high:
        raise SpaceError(f"{where}: low must be below high, got {low} and {high}")
    if log and low <= 0:
        raise SpaceError(f"{where}: a log range needs low > 0, got {low}")
    if integer and (low != int(low) or high != int(high)):
        raise SpaceError(f"{where}: an int range needs integer bounds, got {low} and {high}")
    bins = raw.get("bins")
    if bins is None:
        out.update(kind="continuous", low=float(low), high=float(high), log=log,
                   integer=integer)
        return out
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= MAX_CHOICES:
        raise SpaceError(f"{where}: bins must be an integer in [2, {MAX_CHOICES}], got {bins!r}")
    grid = _grid(float(low), float(high), bins, log, integer)
    if len(grid) < 2:
        raise SpaceError(f"{where}: the grid has fewer than 2 values: {list(grid)}")
    out.update(kind="choice", choices=grid)
    return out


class SearchSpace:
    """A checked search space (see the module's docstring for the description it reads).

    Raises:
        SpaceError: from :meth:`from_mapping`, for any invalid description; the message names
            the decision and what to change.
    """

    def __init__(self, description: Mapping[str, Any]) -> None:
        self.description = json.loads(json.dumps(dict(description)))  # a plain copy
        self.flat: list[Decision] = []
        self.count: Decision | None = None
        self.fixed_layers = 0
        self.layer_templates: list[dict[str, Any]] = []
        self.skip = False
        self.field = "layers"
        self.decisions: list[Decision] = []
        self._parse(self.description)
        self.by_name = {d.name: d for d in self.decisions}

    @classmethod
    def from_mapping(cls, description: Any) -> SearchSpace:
        if not isinstance(description, Mapping):
            raise SpaceError(f"a search space must be a mapping with decisions and/or layers, "
                             f"got {type(description).__name__}")
        return cls(description)

    # --- parsing ----------------------------------------------------------------------------
    def _condition(self, when: Mapping[str, list], where: str, known: dict[str, Decision],
                   prefix: str = "") -> tuple:
        out = []
        for ref, allowed in when.items():
            target = known.get(prefix + ref) if prefix else None
            target = target or known.get(ref)
            if target is None:
                raise SpaceError(f"{where}: when names {ref!r}, which is not an earlier "
                                 f"decision (conditions look back only)")
            if not target.discrete:
                raise SpaceError(f"{where}: when names the continuous {ref!r}; conditions "
                                 f"may name categorical decisions only")
            for v in allowed:
                if index_of(target.choices, v) is None:
                    raise SpaceError(f"{where}: when {ref}: {v!r} is not one of its choices "
                                     f"{list(target.choices)}")
            out.append((target.name, tuple(target.choices[index_of(target.choices, v)]
                                           for v in allowed)))
        return tuple(out)

    def _parse(self, data: dict[str, Any]) -> None:
        unknown = sorted(set(data) - set(SPACE_KEYS))
        if unknown:
            raise SpaceError(f"search space: unknown keys {unknown} (a space has "
                             f"{' and '.join(SPACE_KEYS)})")
        flat_raw = data.get("decisions", []) or []
        if not isinstance(flat_raw, list):
            raise SpaceError("search space: decisions must be a list")
        known: dict[str, Decision] = {}
        for i, raw in enumerate(flat_raw):
            f = _parse_decision(raw, f"decision {i}")
            where = f"decision {i} ({f['name']})"
            if f["name"] in known:
                raise SpaceError(f"{where}: the name is used twice")
            d = Decision(name=f["name"], short=f["name"], kind=f["kind"],
                         choices=f.get("choices", ()), low=f.get("low", 0.0),
                         high=f.get("high", 0.0), log=f.get("log", False),
                         integer=f.get("integer", False),
                         when=self._condition(f["when"], where, known))
            known[d.name] = d
            self.flat.append(d)
        self.decisions = list(self.flat)
        layers = data.get("layers")
        if layers is not None:
            self._parse_layers(layers, known)
        if not self.decisions:
            raise SpaceError("search space: no decisions (give decisions and/or layers)")

    def _parse_layers(self, layers: Any, known: dict[str, Decision]) -> None:
        if not isinstance(layers, Mapping):
            raise SpaceError("layers: must be a mapping with count and decisions")
        unknown = sorted(set(layers) - set(LAYER_KEYS))
        if unknown:
            raise SpaceError(f"layers: unknown keys {unknown} (layers have "
                             f"{', '.join(LAYER_KEYS)})")
        self.field = layers.get("field", "layers")
        if not isinstance(self.field, str) or not _NAME.match(self.field):
            raise SpaceError(f"layers: field must be an identifier, got {self.field!r}")
        self.skip = bool(layers.get("skip", False))
        count = layers.get("count")
        if isinstance(count, bool) or count is None:
            raise SpaceError("layers: count must be a number of layers or a decision "
                             "{name, choices} of numbers")
        if isinstance(count, int):
            if not 1 <= count <= 64:
                raise SpaceError(f"layers: count must be in [1, 64], got {count}")
            self.fixed_layers = count
        else:
            f = _parse_decision(count, "layers.count")
            choices = f.get("choices", ())
            if f["kind"] != "choice" or not all(
                    isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 64
                    for c in choices):
                raise SpaceError("layers.count: choices must be whole numbers in [0, 64]")
            if f["name"] in known:
                raise SpaceError(f"layers.count ({f['name']}): the name is used twice")
            self.count = Decision(name=f["name"], short=f["name"], kind="choice",
                                  choices=choices,
                                  when=self._condition(f["when"], "layers.count", known))
            known[self.count.name] = self.count
            self.decisions.append(self.count)
        if self.field in known:
            raise SpaceError(f"layers: field {self.field!r} is also a decision's name")
        raw_list = layers.get("decisions", []) or []
        if not isinstance(raw_list, list) or (not raw_list and not self.skip):
            raise SpaceError("layers: decisions must be a non-empty list (or skip: true)")
        self.layer_templates = [_parse_decision(r, f"layers.decisions {i}")
                                for i, r in enumerate(raw_list)]
        shorts = [t["name"] for t in self.layer_templates]
        if len(set(shorts)) != len(shorts) or "inputs" in shorts:
            raise SpaceError(f"layers.decisions: names must be distinct and not 'inputs', got "
                             f"{shorts}")
        for i in range(self.max_layers):
            prefix = f"layer{i}."
            base_when: tuple = ()
            if self.count is not None:
                base_when = ((self.count.name, tuple(c for c in self.count.choices if c > i)),)
            for t in self.layer_templates:
                where = f"layers.decisions ({t['name']})"
                d = Decision(name=prefix + t["name"], short=t["name"], kind=t["kind"],
                             choices=t.get("choices", ()), low=t.get("low", 0.0),
                             high=t.get("high", 0.0), log=t.get("log", False),
                             integer=t.get("integer", False), layer=i,
                             when=base_when + self._condition(t["when"], where, known, prefix))
                known[d.name] = d
                self.decisions.append(d)
            if self.skip:
                for j in range(i):
                    d = Decision(name=f"{prefix}skip{j}", short=f"skip{j}", kind="skip",
                                 choices=(False, True), layer=i, when=base_when)
                    known[d.name] = d
                    self.decisions.append(d)

    # --- queries ----------------------------------------------------------------------------
    @property
    def max_layers(self) -> int:
        if self.count is not None:
            return max(self.count.choices)
        return self.fixed_layers

    @property
    def has_layers(self) -> bool:
        return self.max_layers > 0 or self.count is not None

    def layer_decisions(self, i: int) -> list[Decision]:
        """Layer ``i``'s categorical and continuous decisions (no skips), in order."""
        return [d for d in self.decisions if d.layer == i and d.kind != "skip"]

    def skip_decisions(self, i: int) -> list[Decision]:
        """Layer ``i``'s skip connections to layers ``0 .. i-1``."""
        return [d for d in self.decisions if d.layer == i and d.kind == "skip"]

    def digest(self) -> str:
        """A short hash of the normalised description (studies refuse another space)."""
        blob = json.dumps(self.description, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def distributions(self, discrete_only: bool = False) -> dict[str, BaseDistribution]:
        """``{parameter: distribution}`` of every decision (or the categorical ones)."""
        return {d.name: d.distribution() for d in self.decisions
                if d.discrete or not discrete_only}

    def active(self, params: Mapping[str, Any]) -> Iterator[Decision]:
        """The decisions active under ``params``, in order (conditions read ``params``)."""
        for d in self.decisions:
            if d.active(params):
                yield d

    def suggest(self, trial) -> dict[str, Any]:
        """Suggest every active decision on an Optuna trial, in order; returns the params."""
        params: dict[str, Any] = {}
        for d in self.decisions:
            if not d.active(params):
                continue
            if d.discrete:
                params[d.name] = trial.suggest_categorical(d.name, d.choices)
            elif d.integer:
                params[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)
            else:
                params[d.name] = trial.suggest_float(d.name, d.low, d.high, log=d.log)
        return params

    def complete(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` hold a valid value for every active decision."""
        for d in self.active(params):
            if d.name not in params:
                return False
            v = params[d.name]
            if d.discrete and index_of(d.choices, v) is None:
                return False
            if not d.discrete and not (isinstance(v, int | float) and d.low <= v <= d.high):
                return False
        return True

    def structure(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Config values of a trial's params (flat decisions by name, layers as a list)."""
        out = {d.name: params[d.name] for d in self.flat if d.name in params}
        if not self.has_layers:
            return out
        n = self.fixed_layers
        if self.count is not None:
            if self.count.name not in params:
                return out
            n = int(params[self.count.name])
            out[self.count.name] = n
        layers = []
        for i in range(n):
            layer = {d.short: params[d.name] for d in self.layer_decisions(i)
                     if d.name in params}
            if self.skip:
                layer["inputs"] = [j for j in range(i) if params.get(f"layer{i}.skip{j}")]
            layers.append(layer)
        out[self.field] = layers
        return out

    def flatten(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The params of config values (the inverse of :meth:`structure`)."""
        params = {d.name: values[d.name] for d in self.flat if d.name in values}
        if self.count is not None and self.count.name in values:
            params[self.count.name] = values[self.count.name]
        for i, layer in enumerate(values.get(self.field, []) if self.has_layers else []):
            for key, v in layer.items():
                if key == "inputs":
                    for j in range(i):
                        params[f"layer{i}.skip{j}"] = j in v
                else:
                    params[f"layer{i}.{key}"] = v
        return {k: v for k, v in params.items() if k in self.by_name}

    def sample_uniform(self, rng: np.random.Generator) -> dict[str, Any]:
        """A string drawn uniformly decision by decision (continuous ones uniformly in their
        range, log-uniformly for log ranges)."""
        params: dict[str, Any] = {}
        for d in self.decisions:
            if not d.active(params):
                continue
            if d.discrete:
                params[d.name] = d.choices[int(rng.integers(len(d.choices)))]
            else:
                lo, hi = (math.log(d.low), math.log(d.high)) if d.log else (d.low, d.high)
                v = float(rng.uniform(lo, hi))
                v = math.exp(v) if d.log else v
                params[d.name] = int(round(v)) if d.integer else v
        return params

    def describe(self, params: Mapping[str, Any]) -> str:
        """``name=value ...`` of the active decisions (skips as ``layer2<-0,1``)."""
        parts = []
        for d in self.active(params):
            if d.kind == "skip" or d.name not in params:
                continue
            v = params[d.name]
            parts.append(f"{d.name}={v:.4g}" if isinstance(v, float) else f"{d.name}={v}")
            if self.skip and d.layer is not None and d is self.layer_decisions(d.layer)[-1]:
                ins = [str(j) for j in range(d.layer) if params.get(f"layer{d.layer}.skip{j}")]
                if ins:
                    parts.append(f"layer{d.layer}<-{','.join(ins)}")
        return " ".join(parts)
