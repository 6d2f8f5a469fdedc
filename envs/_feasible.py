"""The ``scale`` wall: each action component mapped into the step's feasible interval.

AMC's wall *clips*: an action asking for more than the budget still allows is cut to the
largest feasible setting. Under a tight budget almost every action asks for more than that
on the first (largest) layer, so almost every episode gets the same clipped first layer and
every later layer at its minimum: one policy, whatever the agent does (LeNet-300-100 at
1/40 of its file: 90 of 100 random episodes, 55 of 100 DDPG episodes).

Here the action is *scaled* instead. Per searched dimension of the step's layer, in the
wall's order (keep ratio, sparsity, weight bits, activation bits), the interval runs from
the dimension's minimum to ``top``, the largest setting that still lets this layer's later
dimensions and every later layer at their minimum meet the budget (found by bisection, as
the clip finds it). The action's unit value ``u`` in ``[0, 1]`` is placed in that interval
the way :func:`envs.actions.decode_action` places it in the full range: keep ratios and
densities linearly, bit-widths by equal-width bins over ``[min_bits, top]``. When ``top``
is the dimension's maximum the mapping is exactly ``decode_action``'s, so without a
binding budget nothing changes; when the budget binds, distinct actions stay distinct
policies and an action of 0.5 leaves room for the later layers. The chosen value is
checked against the budget and replaced by ``top`` if a non-monotone cost model says it
does not fit, so the wall's guarantee (every finished policy is feasible) is unchanged.

:func:`units_for` inverts the mapping: the unit values that make a step choose a given
setting (for replaying a known policy as actions, e.g. a seed policy or ``uniform``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from autoprune.core.bisection import largest_fitting_choice
from autoprune.core.policy import LayerPolicy, Policy
from envs.actions import LayerAction, round_sparsity, unit_interval

if TYPE_CHECKING:
    from envs.search_space import LayerRole, SearchSpace

FIELDS = {"keep": "keep_ratio", "sparsity": "sparsity", "w_bits": "w_bits", "a_bits": "a_bits"}
"""The :class:`LayerPolicy` field of each action dimension."""
Fits = Callable[[LayerPolicy], bool]
Wall = Literal["scale", "clip"]
WALLS: tuple[Wall, ...] = ("scale", "clip")
"""How an action meets the budget: mapped into the step's feasible interval (``scale``,
the default) or cut at its top (``clip``, AMC's original wall)."""


def wall_setting(
    space: SearchSpace,
    wall: Wall,
    step: int,
    decided: Mapping[str, LayerPolicy],
    action: np.ndarray,
    wanted: LayerAction,
) -> LayerPolicy:
    """The setting of step ``step`` for ``action`` (decoded: ``wanted``) under ``wall``."""
    if wall == "clip":
        return space.clip(step, decided, wanted)
    units = [unit_interval(float(v)) for v in np.asarray(action, np.float64).reshape(-1)]
    return scaled_setting(space, step, decided, units)


def replay(
    space: SearchSpace,
    wall: Wall,
    policy: Policy,
    encode: Callable[[LayerPolicy], np.ndarray],
    decode: Callable[[np.ndarray], LayerAction],
) -> list[np.ndarray]:
    """One action per step with which an episode under ``wall`` chooses ``policy``'s
    settings (a setting above the feasible interval becomes its top; layers ``policy``
    lacks are read as uncompressed).

    ``encode``/``decode`` are the environment's action mapping without a budget.
    """
    decided: dict[str, LayerPolicy] = {}
    actions = []
    for step, role in enumerate(space.steps):
        target = policy.layers.get(role.name, LayerPolicy())
        if wall == "clip":
            action = encode(target)
        else:
            units = units_for(space, step, decided, target)
            action = np.asarray([2.0 * u - 1.0 for u in units], dtype=np.float32)
        decided[role.name] = wall_setting(space, wall, step, decided, action, decode(action))
        actions.append(action)
    return actions


def scaled_setting(
    space: SearchSpace, step: int, decided: Mapping[str, LayerPolicy], units: Sequence[float]
) -> LayerPolicy:
    """The setting of step ``step`` for action ``units`` (one value in ``[0, 1]`` per
    dimension of ``space.dims``), each mapped into its feasible interval."""
    role, fits = _role_and_fits(space, step, decided)
    current = space.extreme(role, "min")
    for dim, u in zip(space.dims, units, strict=True):
        candidates = _candidates(space, role, dim)
        if candidates is None:
            continue
        field = FIELDS[dim]
        top = _top(candidates, fits, current, field)
        value = _place(space, role, dim, min(1.0, max(0.0, float(u))), candidates, top)
        if value != candidates[top] and not fits(_with(current, field, value)):
            value = candidates[top]
        current = _with(current, field, value)
    return current


def units_for(
    space: SearchSpace, step: int, decided: Mapping[str, LayerPolicy], target: LayerPolicy
) -> list[float]:
    """Unit values with which :func:`scaled_setting` chooses ``target`` at step ``step``
    (or, where ``target`` is above the feasible interval, its top)."""
    role, fits = _role_and_fits(space, step, decided)
    current = space.extreme(role, "min")
    units: list[float] = []
    for dim in space.dims:
        candidates = _candidates(space, role, dim)
        if candidates is None:
            units.append(0.5)
            continue
        field = FIELDS[dim]
        top = _top(candidates, fits, current, field)
        u = _unit(space, dim, getattr(target, field), candidates, top)
        units.append(u)
        current = _with(current, field, _place(space, role, dim, u, candidates, top))
    return units


def _role_and_fits(
    space: SearchSpace, step: int, decided: Mapping[str, LayerPolicy]
) -> tuple[LayerRole, Fits]:
    role = space.steps[step]
    rest = space.state(decided, step + 1, "min")

    def fits(candidate: LayerPolicy) -> bool:
        return space.feasible({**rest, role.name: candidate})

    return role, fits


def _candidates(space: SearchSpace, role: LayerRole, dim: str) -> Sequence[float] | None:
    """The settings of ``dim`` for ``role``, ascending resources; None when not searched."""
    return dict(space.candidates(role, space.extreme(role, "max"))).get(FIELDS[dim])


def _top(candidates: Sequence[float], fits: Fits, current: LayerPolicy, field: str) -> int:
    """Index of the largest candidate that fits (0, the minimum, is known to fit)."""
    indices = list(range(len(candidates)))
    return largest_fitting_choice(lambda i: fits(_with(current, field, candidates[i])), indices)


def _place(
    space: SearchSpace,
    role: LayerRole,
    dim: str,
    u: float,
    candidates: Sequence[float],
    top: int,
) -> float:
    """``u`` placed in ``[candidates[0], candidates[top]]`` as ``decode_action`` places it."""
    if dim in ("w_bits", "a_bits"):
        return candidates[min(top, math.floor(u * (top + 1)))]
    if dim == "keep":
        high = space.max_keep if top == len(candidates) - 1 else candidates[top]
        return space.round_keep(role, space.min_keep + u * max(0.0, high - space.min_keep))
    least = candidates[top]  # sparsity: candidates run from max_sparsity down
    wanted = space.max_sparsity - u * max(0.0, space.max_sparsity - least)
    return max(least, round_sparsity(wanted, space.max_sparsity))


def _unit(
    space: SearchSpace, dim: str, value: float, candidates: Sequence[float], top: int
) -> float:
    """The inverse of :func:`_place` for a ``value`` of ``dim`` (clamped to the interval)."""
    if dim in ("w_bits", "a_bits"):
        index = min(top, max(0, sum(1 for c in candidates if c <= value) - 1))
        return (index + 0.5) / (top + 1)
    if dim == "keep":
        high = space.max_keep if top == len(candidates) - 1 else candidates[top]
        span = high - space.min_keep
        return _clamp((value - space.min_keep) / span if span > 0 else 0.0)
    span = space.max_sparsity - candidates[top]
    return _clamp((space.max_sparsity - value) / span if span > 0 else 0.0)


def _clamp(u: float) -> float:
    return min(1.0, max(0.0, u))


def _with(policy: LayerPolicy, field: str, value: float) -> LayerPolicy:
    changes: dict[str, Any] = {field: value}
    return replace(policy, **changes)
