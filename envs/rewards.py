"""Reward functions of the compression environment, selectable by name.

Every reward is a small pure function ``f(metrics, baseline, limits, **kwargs) -> float``:

* ``metrics``: what the evaluator measured for the finished policy (``accuracy`` as a
  fraction, ``macs``, ``params``, ``size`` in bytes, ``latency`` in ms, ``energy`` in mJ);
* ``baseline``: the same keys for the uncompressed model;
* ``limits``: the absolute budget limit per constrained metric (empty without a budget).

The budget itself is guaranteed by the environment, so ``accuracy`` alone is a complete
reward (AMC's "hard budget" setting); the others also trade accuracy against cost.

Example:
    >>> reward = make_reward("weighted", latency_weight=0.2, energy_weight=0.0, size_weight=0.0)
    >>> reward({"accuracy": 0.9, "latency": 1.0, "energy": 1.0, "size": 1.0},
    ...        {"accuracy": 0.95, "latency": 2.0, "energy": 1.0, "size": 1.0}, {})
    0.8
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from functools import partial

from autoprune.core.errors import AutopruneError, unknown_name

RewardFn = Callable[[Mapping[str, float], Mapping[str, float], Mapping[str, float]], float]
"""``reward(metrics, baseline, limits) -> float``."""


def accuracy_reward(
    metrics: Mapping[str, float], baseline: Mapping[str, float], limits: Mapping[str, float]
) -> float:
    """Validation accuracy; the budget is enforced as a hard constraint by the environment."""
    return float(metrics["accuracy"])


def amc_reward(
    metrics: Mapping[str, float], baseline: Mapping[str, float], limits: Mapping[str, float]
) -> float:
    """AMC's ``-error * log(FLOPs)`` with the error as a fraction and FLOPs = MACs.

    Example:
        >>> round(amc_reward({"accuracy": 0.9, "macs": math.exp(10)}, {}, {}), 6)
        -1.0
    """
    error = 1.0 - float(metrics["accuracy"])
    return -error * math.log(max(1.0, float(metrics["macs"])))


def mnas_reward(
    metrics: Mapping[str, float],
    baseline: Mapping[str, float],
    limits: Mapping[str, float],
    *,
    latency_weight: float = -0.07,
    energy_weight: float = -0.07,
) -> float:
    """MnasNet's soft objective ``accuracy * (latency / T)^w * (energy / E)^v``.

    ``T`` and ``E`` are the budget limits of latency and energy, or the baseline's values
    when the budget does not constrain them.

    Example:
        >>> round(mnas_reward({"accuracy": 0.8, "latency": 2.0, "energy": 1.0},
        ...                   {"latency": 8.0, "energy": 1.0}, {"latency": 4.0}), 4)
        0.8398
    """
    target_latency = limits.get("latency", baseline["latency"])
    target_energy = limits.get("energy", baseline["energy"])
    latency = _ratio(metrics["latency"], target_latency) ** latency_weight
    energy = _ratio(metrics["energy"], target_energy) ** energy_weight
    return float(metrics["accuracy"]) * latency * energy


def weighted_reward(
    metrics: Mapping[str, float],
    baseline: Mapping[str, float],
    limits: Mapping[str, float],
    *,
    latency_weight: float = 0.1,
    energy_weight: float = 0.1,
    size_weight: float = 0.1,
) -> float:
    """``accuracy - sum_k weight_k * cost_k / baseline_k`` over latency, energy and size.

    Example:
        >>> weighted_reward({"accuracy": 0.9, "latency": 1.0, "energy": 3.0, "size": 10.0},
        ...                 {"latency": 2.0, "energy": 6.0, "size": 40.0}, {})
        0.775
    """
    weights = {"latency": latency_weight, "energy": energy_weight, "size": size_weight}
    penalty = sum(w * _ratio(metrics[k], baseline[k]) for k, w in weights.items() if w)
    return float(metrics["accuracy"]) - penalty


def _ratio(value: float, reference: float) -> float:
    """``value / reference``, kept positive so that fractional powers stay defined."""
    return max(float(value), 1e-12) / max(float(reference), 1e-12)


_REWARDS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy_reward,
    "amc": amc_reward,
    "mnas": mnas_reward,
    "weighted": weighted_reward,
}


def reward_names() -> list[str]:
    """Names accepted by :func:`make_reward`."""
    return sorted(_REWARDS)


def make_reward(name: str, **kwargs: float) -> RewardFn:
    """The reward called ``name`` with its keyword arguments bound.

    Raises:
        AutopruneError: For an unknown name or a keyword the reward does not take.
    """
    if name not in _REWARDS:
        raise unknown_name("reward", name, reward_names())
    fn = _REWARDS[name]
    accepted = [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise AutopruneError(
            f"reward '{name}' takes no argument {unknown}; its arguments are: "
            f"{', '.join(accepted) or 'none'}"
        )
    return partial(fn, **kwargs) if kwargs else fn
