"""What an episode searches, and the budget guarantee (AMC's wall, HAQ's repair).

A :class:`SearchSpace` lists the *steps* of an episode (one per searchable layer, in execution
order), the extreme settings of every step (all at the minimum, all at the maximum), and
keeps every finished policy inside the budget. "Larger" means more resources in every
dimension: a larger keep ratio, a *lower* sparsity, more bits.

* **Wall** (:meth:`SearchSpace.clip`, AMC): before a step's setting is accepted, the policy
  "decisions so far + this setting + every later step at its minimum" must satisfy the
  budget. Otherwise the dimensions of the layer are clipped one after the other, in the
  mode's order (keep ratio, sparsity, weight bits, activation bits): each takes the largest
  feasible candidate not above the request (kept channel counts, sparsities on the
  :data:`~envs.actions.SPARSITY_STEP` grid, integer bit-widths), found by bisection with the
  later dimensions of this layer and every later layer at their minimum. The previous step
  left "this layer at its minimum" feasible, and each bisection only returns a candidate it
  checked (or that one), so the invariant carries to the last layer whatever the cost
  model, monotone or not.
* **Repair** (:meth:`SearchSpace.repair`, HAQ): after the last step the policy is checked
  once more; while it violates the budget, bit-widths are lowered by one from the last layer
  back, round after round, then sparsities raised (density × 0.9 per round), then keep
  ratios lowered by one channel unit, and as a last resort the all-minimum policy is used.
  Episodes never need it (the wall suffices); it guards policies built otherwise.

A budget that even the all-minimum policy violates is rejected at construction, with that
policy's cost as the smallest reachable value (rounded up, so it can be passed back as the
target).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from autoprune.compress import ChannelPlan, kept_count
from autoprune.core.bisection import largest_fitting_choice
from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.policy import FLOAT_BITS, LayerPolicy, Policy, architecture_fingerprint
from autoprune.core.specs import LayerSpec
from autoprune.cost import CostReport
from autoprune.workflow.evaluation import Evaluation, EvaluatorConfig
from envs._infeasible import check_reachable, knob_settings
from envs.actions import (
    DEFAULT_MAX_SPARSITY,
    DIMENSIONS,
    SPARSITY_GRID,
    LayerAction,
    Mode,
    round_sparsity,
)

PINNED_BITS = 8
"""Bit-width of the pinned first and last layers (HAQ)."""
REPAIR_DENSITY = 0.9
"""Each repair round keeps at most this share of a layer's density (at least one grid step)."""
_IDENTITY = LayerPolicy()
_MEMO_SIZE = 50_000
Level = Literal["min", "max"]
Layers = dict[str, LayerPolicy]
Candidates = list[tuple[str, Sequence[float] | range]]


PINNING_MODES = ("quantize", "joint")
"""Modes that pin the first and last layer's bits to 8 by default (HAQ). ``sparse`` does
not: Deep Compression coded every layer with few bits (LeNet-300-100's first layer, 89% of
its weights, at 5), and pinning it to 8 forces its sparsity up to fit a size budget.
"""


class EvaluatorLike(Protocol):
    """What the environment needs from :class:`autoprune.workflow.evaluation.PolicyEvaluator`."""

    specs: list[LayerSpec]
    plan: ChannelPlan
    config: EvaluatorConfig
    baseline_metrics: dict[str, float]

    def costs(self, policy: Policy, metrics: Collection[str]) -> dict[str, float]:
        """Predicted ``metrics`` (of macs, params, size, bits, latency, energy); no model
        is touched."""
        ...

    def cost_report(self, policy: Policy) -> CostReport:
        """The cost model's per-layer report."""
        ...

    def evaluate(self, policy: Policy) -> Evaluation:
        """Accuracy and costs of ``policy`` (compresses a copy of the model)."""
        ...

    def record(self) -> dict[str, Any]:
        """How a policy is scored (recorded in the policy so ``apply`` can repeat it)."""
        ...


@dataclass(frozen=True)
class LayerRole:
    """One step of an episode.

    Attributes:
        name: Layer name.
        index: Position among all layers of the model (execution order).
        size: Channels of the group the layer controls; 0 when its keep ratio is not searched.
        unit: Kept channel counts are multiples of this (or the whole ``size``).
        bits: Whether the layer's bit-widths are searched.
        pinned: Whether its bit-widths are pinned to 8 (HAQ's first and last layer).
        sparse: Whether its fine-grained sparsity is searched.
    """

    name: str
    index: int
    size: int
    unit: int
    bits: bool
    pinned: bool
    sparse: bool = False

    @property
    def prunes(self) -> bool:
        """Whether the layer's keep ratio is searched."""
        return self.size > 0


class SearchSpace:
    """Steps, extreme settings and the budget guarantee of one environment.

    Example:
        >>> # space = SearchSpace(evaluator, Budget.parse(["size=0.05"]), "sparse")
        >>> # [role.name for role in space.steps]
    """

    def __init__(
        self,
        evaluator: EvaluatorLike,
        budget: Budget,
        mode: Mode,
        *,
        min_keep: float = 0.2,
        max_keep: float = 1.0,
        min_bits: int = 2,
        max_bits: int = 8,
        max_sparsity: float = DEFAULT_MAX_SPARSITY,
        pin_first_last: bool | None = None,
        layers: Sequence[str] | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.budget = budget
        self.mode = mode
        self.dims = DIMENSIONS[mode]
        self.min_keep, self.max_keep = min_keep, max_keep
        self.min_bits, self.max_bits = min_bits, max_bits
        self.max_sparsity = round_sparsity(max_sparsity, max_sparsity)
        self.specs = list(evaluator.specs)
        self.names = [s.name for s in self.specs]
        self.fingerprint = architecture_fingerprint(self.specs)
        self.baseline = dict(evaluator.baseline_metrics)
        self.limits = budget.limits(self.baseline)
        self.metrics = tuple(sorted({*self.limits, "macs"}))
        """What the wall and the observation price: the budget's metrics and MACs (the
        ``.apz`` size prediction, the costliest, runs only under a size budget)."""
        chosen = self._chosen(layers)
        pinned = set()
        if pin_first_last is None:
            pin_first_last = mode in PINNING_MODES
        if pin_first_last and "w_bits" in self.dims:
            pinned = {self.names[0], self.names[-1]} & chosen
        a_pin = PINNED_BITS if "a_bits" in self.dims else FLOAT_BITS
        self.pin = LayerPolicy(w_bits=PINNED_BITS, a_bits=a_pin)
        self.fixed: Layers = {name: self.pin for name in pinned}
        self.steps = self._roles(chosen, pinned)
        self._low = {r.name: self.extreme(r, "min") for r in self.steps}
        self._high = {r.name: self.extreme(r, "max") for r in self.steps}
        self._memo: dict[tuple[LayerPolicy, ...], dict[str, float]] = {}
        self._check_feasible()

    def _chosen(self, layers: Sequence[str] | None) -> set[str]:
        if layers is None:
            return set(self.names)
        if isinstance(layers, str):
            layers = [layers]
        for name in layers:
            if name not in self.names:
                raise unknown_name("layer", name, self.names)
        return set(layers)

    def _roles(self, chosen: set[str], pinned: set[str]) -> list[LayerRole]:
        plan = self.evaluator.plan
        round_to = self.evaluator.config.compression.round_to or 1
        groups = {g.controller: g for g in plan.group_info if g.frozen is None}
        sparse = "sparsity" in self.dims
        roles = []
        for index, name in enumerate(self.names):
            group = groups.get(name) if "keep" in self.dims else None
            bits = "w_bits" in self.dims and name not in pinned
            if name not in chosen or (group is None and not bits and not sparse):
                continue
            size = group.size if group else 0
            unit = math.lcm(group.channel_groups, round_to) if group else 1
            roles.append(LayerRole(name, index, size, unit, bits, name in pinned, sparse))
        if not roles:
            raise AutopruneError(
                f"no layer to search in mode '{self.mode}' among {sorted(chosen)}; list layers "
                f"that control their channels ({', '.join(plan.prunable) or 'none'}) or use "
                "mode='quantize'"
            )
        return roles

    def setting(
        self,
        role: LayerRole,
        keep: float = 1.0,
        w_bits: int = FLOAT_BITS,
        a_bits: int = FLOAT_BITS,
        sparsity: float = 0.0,
    ) -> LayerPolicy:
        """The layer policy of ``role`` for a request (keep ratio rounded to whole channels,
        sparsity to its grid; dimensions the role does not search take their fixed value)."""
        ratio = self.round_keep(role, keep)
        sparsity = round_sparsity(sparsity, self.max_sparsity) if role.sparse else 0.0
        if not role.bits:
            fixed = self.pin if role.pinned else _IDENTITY
            w_bits, a_bits = fixed.w_bits, fixed.a_bits
        elif "a_bits" not in self.dims:
            a_bits = FLOAT_BITS
        return LayerPolicy(keep_ratio=ratio, w_bits=w_bits, a_bits=a_bits, sparsity=sparsity)

    def request(self, role: LayerRole, action: LayerAction) -> LayerPolicy:
        """The (rounded, unclipped) layer policy a decoded action asks for."""
        return self.setting(role, action.keep_ratio, action.w_bits, action.a_bits, action.sparsity)

    def extreme(self, role: LayerRole, level: Level) -> LayerPolicy:
        """``role`` at its smallest (``min``) or largest (``max``) setting."""
        if level == "min":
            return self.setting(role, self.min_keep, self.min_bits, self.min_bits, 1.0)
        return self.setting(role, self.max_keep, self.max_bits, self.max_bits, 0.0)

    def round_keep(self, role: LayerRole, ratio: float) -> float:
        """``ratio`` rounded to whole channels (and ``round_to`` units) of ``role``'s group."""
        if not role.prunes:
            return 1.0
        return self._ratio(role, kept_count(ratio, role.size, role.unit))

    @staticmethod
    def _ratio(role: LayerRole, count: int) -> float:
        return 1.0 if count >= role.size else count / role.size

    def state(self, decided: Mapping[str, LayerPolicy], start: int, level: Level) -> Layers:
        """Pinned layers, ``decided``, and the steps from ``start`` on at ``level``."""
        rest = self._low if level == "min" else self._high
        later = {r.name: rest[r.name] for r in self.steps[start:]}
        return {**self.fixed, **decided, **later}

    def minimum(self) -> Layers:
        """Every step at its minimum (the cheapest policy of the search)."""
        return self.state({}, 0, "min")

    def policy(self, layers: Mapping[str, LayerPolicy]) -> Policy:
        """A full policy (missing layers untouched) without validation, for cost queries."""
        full = {n: layers.get(n, _IDENTITY) for n in self.names}
        return Policy(layers=full, fingerprint=self.fingerprint, layer_names=list(self.names))

    def costs(self, layers: Mapping[str, LayerPolicy]) -> dict[str, float]:
        """``evaluator.costs`` of ``layers``, memoised by the settings."""
        key = tuple(layers.get(n, _IDENTITY) for n in self.names)
        if key not in self._memo:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = self.evaluator.costs(self.policy(layers), self.metrics)
        return self._memo[key]

    def feasible(self, layers: Mapping[str, LayerPolicy]) -> bool:
        """Whether ``layers`` satisfies the budget (always true without one)."""
        return not self.limits or self.budget.satisfied(self.costs(layers), self.baseline)

    def clip(
        self, step: int, decided: Mapping[str, LayerPolicy], action: LayerAction
    ) -> LayerPolicy:
        """The largest setting not above ``action`` that keeps the budget reachable."""
        role = self.steps[step]
        wanted = self.request(role, action)
        rest = self.state(decided, step + 1, "min")

        def fits(candidate: LayerPolicy) -> bool:
            return self.feasible({**rest, role.name: candidate})

        if fits(wanted):
            return wanted
        current = self._low[role.name]
        for field, values in self.candidates(role, wanted):
            current = _with_field(current, field, _largest(values, fits, current, field))
        return current

    def candidates(self, role: LayerRole, wanted: LayerPolicy) -> Candidates:
        """Per searched dimension, in wall order: the settings from the minimum up to
        ``wanted``'s, in ascending resources."""
        out: Candidates = []
        if role.prunes:
            out.append(("keep_ratio", self._keep_candidates(role, wanted.keep_ratio)))
        if role.sparse:
            top = round(self.max_sparsity * SPARSITY_GRID)
            low = round(wanted.sparsity * SPARSITY_GRID)
            out.append(("sparsity", [k / SPARSITY_GRID for k in range(top, low - 1, -1)]))
        if role.bits:
            out.append(("w_bits", range(self.min_bits, wanted.w_bits + 1)))
            if "a_bits" in self.dims:
                out.append(("a_bits", range(self.min_bits, wanted.a_bits + 1)))
        return out

    def _keep_candidates(self, role: LayerRole, ratio: float) -> list[float]:
        """Keep ratios of every kept count from the minimum up to ``ratio``'s, ascending."""
        low = kept_count(self.min_keep, role.size, role.unit)
        top = max(low, kept_count(ratio, role.size, role.unit))
        counts = list(range(low, top + 1, role.unit))
        if counts[-1] != top:
            counts.append(top)
        return [self._ratio(role, c) for c in counts]

    def repair(self, layers: Mapping[str, LayerPolicy]) -> tuple[Layers, bool]:
        """``layers`` lowered until the budget holds, and whether anything was lowered."""
        current = dict(layers)
        if self.feasible(current):
            return current, False
        for lower in (self._lower_bits, self._raise_sparsity, self._lower_keep):
            changed = True
            while changed:
                changed = False
                for role in reversed(self.steps):
                    smaller = lower(role, current[role.name])
                    if smaller is None:
                        continue
                    current[role.name], changed = smaller, True
                    if self.feasible(current):
                        return current, True
        return self.minimum(), True

    def _lower_bits(self, role: LayerRole, layer: LayerPolicy) -> LayerPolicy | None:
        """One bit less on each searched bit-width (None at the minimum)."""
        if not role.bits:
            return None
        w_bits = max(self.min_bits, min(self.max_bits, layer.w_bits - 1))
        a_bits = layer.a_bits
        if "a_bits" in self.dims:
            a_bits = max(self.min_bits, min(self.max_bits, layer.a_bits - 1))
        if (w_bits, a_bits) == (layer.w_bits, layer.a_bits):
            return None
        return replace(layer, w_bits=w_bits, a_bits=a_bits)

    def _raise_sparsity(self, role: LayerRole, layer: LayerPolicy) -> LayerPolicy | None:
        """Density times :data:`REPAIR_DENSITY`, on the grid (None at ``max_sparsity``)."""
        top = round(self.max_sparsity * SPARSITY_GRID)
        now = round(layer.sparsity * SPARSITY_GRID)
        if not role.sparse or now >= top:
            return None
        target = (1.0 - (1.0 - layer.sparsity) * REPAIR_DENSITY) * SPARSITY_GRID
        step = min(top, max(now + 1, math.ceil(target - 1e-9)))
        return replace(layer, sparsity=step / SPARSITY_GRID)

    def _lower_keep(self, role: LayerRole, layer: LayerPolicy) -> LayerPolicy | None:
        """One channel unit less (None at ``min_keep``)."""
        if not role.prunes:
            return None
        count = kept_count(layer.keep_ratio, role.size, role.unit)
        smaller = (count - 1) // role.unit * role.unit
        if smaller < kept_count(self.min_keep, role.size, role.unit):
            return None
        return replace(layer, keep_ratio=self._ratio(role, smaller))

    def _check_feasible(self) -> None:
        settings = knob_settings(self.dims, self.min_keep, self.max_sparsity, self.min_bits)
        cheapest = self.costs(self.minimum())
        check_reachable(self.budget, self.baseline, cheapest, f"mode '{self.mode}'", settings)


def _with_field(policy: LayerPolicy, field: str, value: Any) -> LayerPolicy:
    """``policy`` with the field named ``field`` (known only at runtime) set to ``value``."""
    changes: dict[str, Any] = {field: value}
    return replace(policy, **changes)


def _largest(
    values: Sequence[float] | range,
    fits: Callable[[LayerPolicy], bool],
    base: LayerPolicy,
    field: str,
) -> float | int:
    """Largest of ascending ``values`` whose setting fits; ``values[0]`` is known to fit."""
    return largest_fitting_choice(lambda value: fits(_with_field(base, field, value)), values)
