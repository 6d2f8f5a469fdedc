"""What an episode searches, and the budget guarantee (AMC's wall, HAQ's repair).

A :class:`SearchSpace` lists the *steps* of an episode (one per searchable layer, in execution
order), the extreme settings of every step (all at the minimum, all at the maximum), and
keeps every finished policy inside the budget:

* **Wall** (:meth:`SearchSpace.clip`, AMC): before a step's setting is accepted, the policy
  "decisions so far + this setting + every later step at its minimum" must satisfy the
  budget. The largest feasible setting not above the requested one is found by bisection
  over the discrete candidates (kept channel counts, integer bit-widths). In joint mode the
  keep ratio is clipped first (this layer's bits at their minimum), then the weight bits,
  then the activation bits. The previous step left "this layer at its minimum" feasible, so
  the bisection always has a feasible fallback and the invariant carries to the last layer.
* **Repair** (:meth:`SearchSpace.repair`, HAQ): after the last step the policy is checked
  once more; while it violates the budget, bit-widths are lowered by one from the last layer
  back, round after round, then keep ratios by one channel unit, and as a last resort the
  all-minimum policy is used. With the wall in force it only acts if a cost model is not
  monotone in the settings.

A budget that even the all-minimum policy violates is rejected at construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from autoprune.budget import Budget, Constraint
from autoprune.compress import ChannelPlan, kept_count
from autoprune.cost import CostReport
from autoprune.errors import AutopruneError, unknown_name
from autoprune.evaluation import Evaluation, EvaluatorConfig
from autoprune.policy import FLOAT_BITS, LayerPolicy, Policy, architecture_fingerprint
from autoprune.specs import LayerSpec
from envs.actions import LayerAction, Mode

PINNED_BITS = 8
"""Bit-width of the pinned first and last layers (HAQ)."""
_IDENTITY = LayerPolicy()
_MEMO_SIZE = 50_000
Level = Literal["min", "max"]
Layers = dict[str, LayerPolicy]


class EvaluatorLike(Protocol):
    """What the environment needs from :class:`autoprune.evaluation.PolicyEvaluator`."""

    specs: list[LayerSpec]
    plan: ChannelPlan
    config: EvaluatorConfig
    baseline_metrics: dict[str, float]

    def costs(self, policy: Policy) -> dict[str, float]:
        """Predicted macs, params, size, latency and energy (fast, no model touched)."""
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
    """

    name: str
    index: int
    size: int
    unit: int
    bits: bool
    pinned: bool

    @property
    def prunes(self) -> bool:
        """Whether the layer's keep ratio is searched."""
        return self.size > 0


class SearchSpace:
    """Steps, extreme settings and the budget guarantee of one environment.

    Example:
        >>> # space = SearchSpace(evaluator, Budget.parse(["flops=0.5"]), "prune")
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
        pin_first_last: bool = True,
        layers: Sequence[str] | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.budget = budget
        self.mode = mode
        self.min_keep, self.max_keep = min_keep, max_keep
        self.min_bits, self.max_bits = min_bits, max_bits
        self.specs = list(evaluator.specs)
        self.names = [s.name for s in self.specs]
        self.fingerprint = architecture_fingerprint(self.specs)
        self.baseline = dict(evaluator.baseline_metrics)
        self.limits = budget.limits(self.baseline)
        chosen = self._chosen(layers)
        pinned = set()
        if pin_first_last and mode != "prune":
            pinned = {self.names[0], self.names[-1]} & chosen
        pin = LayerPolicy(w_bits=PINNED_BITS, a_bits=PINNED_BITS)
        self.fixed: Layers = {name: pin for name in pinned}
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
        roles = []
        for index, name in enumerate(self.names):
            group = groups.get(name) if self.mode != "quantize" else None
            bits = self.mode != "prune" and name not in pinned
            if name not in chosen or (group is None and not bits):
                continue
            size = group.size if group else 0
            unit = math.lcm(group.channel_groups, round_to) if group else 1
            roles.append(LayerRole(name, index, size, unit, bits, name in pinned))
        if not roles:
            raise AutopruneError(
                f"no layer to search in mode '{self.mode}' among {sorted(chosen)}; list layers "
                f"that control their channels ({', '.join(plan.prunable) or 'none'}) or use "
                "mode='quantize'"
            )
        return roles

    def setting(
        self, role: LayerRole, keep: float = 1.0, w_bits: int = FLOAT_BITS, a_bits: int = FLOAT_BITS
    ) -> LayerPolicy:
        """The layer policy of ``role`` for a request (keep ratio rounded to whole channels)."""
        ratio = self.round_keep(role, keep)
        if role.bits:
            return LayerPolicy(keep_ratio=ratio, w_bits=w_bits, a_bits=a_bits)
        bits = PINNED_BITS if role.pinned else FLOAT_BITS
        return LayerPolicy(keep_ratio=ratio, w_bits=bits, a_bits=bits)

    def request(self, role: LayerRole, action: LayerAction) -> LayerPolicy:
        """The (rounded, unclipped) layer policy a decoded action asks for."""
        return self.setting(role, action.keep_ratio, action.w_bits, action.a_bits)

    def extreme(self, role: LayerRole, level: Level) -> LayerPolicy:
        """``role`` at its smallest (``min``) or largest (``max``) setting."""
        if level == "min":
            return self.setting(role, self.min_keep, self.min_bits, self.min_bits)
        return self.setting(role, self.max_keep, self.max_bits, self.max_bits)

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
            self._memo[key] = self.evaluator.costs(self.policy(layers))
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
        if self.feasible({**rest, role.name: wanted}):
            return wanted

        def fits(candidate: LayerPolicy) -> bool:
            return self.feasible({**rest, role.name: candidate})

        low = self._low[role.name]
        keep = _largest(self._keep_candidates(role, wanted.keep_ratio), fits, low, "keep_ratio")
        current = replace(low, keep_ratio=keep)
        if role.bits:
            w_bits = range(self.min_bits, wanted.w_bits + 1)
            current = replace(current, w_bits=_largest(w_bits, fits, current, "w_bits"))
            a_bits = range(self.min_bits, wanted.a_bits + 1)
            current = replace(current, a_bits=_largest(a_bits, fits, current, "a_bits"))
        return current

    def _keep_candidates(self, role: LayerRole, ratio: float) -> list[float]:
        """Keep ratios of every kept count from the minimum up to ``ratio``'s, ascending."""
        if not role.prunes:
            return [1.0]
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
        for lower in (self._lower_bits, self._lower_keep):
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
        if not role.bits or max(layer.w_bits, layer.a_bits) <= self.min_bits:
            return None
        w_bits = max(self.min_bits, layer.w_bits - 1)
        return replace(layer, w_bits=w_bits, a_bits=max(self.min_bits, layer.a_bits - 1))

    def _lower_keep(self, role: LayerRole, layer: LayerPolicy) -> LayerPolicy | None:
        if not role.prunes:
            return None
        count = kept_count(layer.keep_ratio, role.size, role.unit)
        smaller = (count - 1) // role.unit * role.unit
        if smaller < kept_count(self.min_keep, role.size, role.unit):
            return None
        return replace(layer, keep_ratio=self._ratio(role, smaller))

    def _check_feasible(self) -> None:
        costs = self.costs(self.minimum())
        for constraint in self.budget.constraints:
            limit = constraint.limit(self.baseline)
            if costs[constraint.metric] > limit * (1 + 1e-9):
                raise self._infeasible(constraint, limit, costs[constraint.metric])

    def _infeasible(self, constraint: Constraint, limit: float, smallest: float) -> AutopruneError:
        metric = constraint.metric
        target = f"{metric}={_format(metric, limit)}"
        if constraint.relative:
            target = f"{metric}={constraint.value:g} of the original ({_format(metric, limit)})"
        knobs = {
            "prune": ("min_keep", f"min_keep={self.min_keep:g}"),
            "quantize": ("min_bits", f"min_bits={self.min_bits}"),
            "joint": ("min_keep or min_bits", ""),
        }
        knob, settings = knobs[self.mode]
        settings = settings or f"min_keep={self.min_keep:g}, min_bits={self.min_bits}"
        share = smallest / self.baseline[metric] if self.baseline[metric] else 0.0
        return AutopruneError(
            f"budget {target} is infeasible: the smallest this search can reach is "
            f"{_format(metric, smallest)} ({share:.3g} of the original; {settings}); "
            f"raise the target or lower {knob}"
        )


def _largest(
    values: Sequence[float] | range,
    fits: Callable[[LayerPolicy], bool],
    base: LayerPolicy,
    field: str,
) -> float | int:
    """Largest of ascending ``values`` whose setting fits; ``values[0]`` is known to fit."""
    lo, hi = 0, len(values) - 1
    if hi <= 0 or fits(replace(base, **{field: values[hi]})):
        return values[max(hi, 0)]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(replace(base, **{field: values[mid]})):
            lo = mid
        else:
            hi = mid
    return values[lo]


def _format(metric: str, value: float) -> str:
    """A metric value with its unit, as budgets are written."""
    if metric == "latency":
        return f"{value:.4g} ms"
    if metric == "energy":
        return f"{value:.4g} mJ"
    unit = {"macs": " MACs", "params": " params", "size": " bytes"}[metric]
    return f"{value:,.0f}{unit}"
