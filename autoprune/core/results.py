"""Search records shared by every search method, the tracker and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autoprune.core.policy import Policy

OBJECTIVES = {"accuracy": "max", "latency": "min", "energy": "min", "size": "min", "macs": "min"}
"""Objectives of the Pareto front and their direction."""


@dataclass
class EpisodeRecord:
    """One evaluated policy.

    Attributes:
        index: 0-based evaluation number within the search.
        policy: The (feasible, budget-repaired) policy that was evaluated.
        reward: The search method's scalar reward.
        metrics: ``accuracy`` (validation), ``macs``, ``params``, ``size`` (bytes),
            ``latency`` (ms), ``energy`` (mJ) and ``budget_use_<metric>`` (the fraction of each
            target's limit used, e.g. ``budget_use_macs`` for ``flops=``).
        feasible: Whether every budget constraint holds.
        seconds: Wall time of this evaluation.
        cached: Whether the evaluation came from the cache.
    """

    index: int
    policy: Policy
    reward: float
    metrics: dict[str, float]
    feasible: bool = True
    seconds: float = 0.0
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "index": self.index,
            "reward": self.reward,
            "metrics": self.metrics,
            "feasible": self.feasible,
            "seconds": self.seconds,
            "cached": self.cached,
            "policy": self.policy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            index=int(data["index"]),
            policy=Policy.from_dict(data["policy"]),
            reward=float(data["reward"]),
            metrics={k: float(v) for k, v in data["metrics"].items()},
            feasible=bool(data["feasible"]),
            seconds=float(data.get("seconds", 0.0)),
            cached=bool(data.get("cached", False)),
        )


REPEAT_WARNING_SHARE = 0.1
"""A search whose repeated evaluations exceed this share of its history is warned about."""


def distinct_policies(history: list[EpisodeRecord]) -> int:
    """How many different policies ``history`` holds (same layer settings = same policy).

    Example:
        >>> from autoprune.core.policy import LayerPolicy
        >>> make = lambda keep: Policy({"fc": LayerPolicy(keep_ratio=keep)}, fingerprint="f")
        >>> distinct_policies([EpisodeRecord(i, make(k), 0.0, {}) for i, k in
        ...                    enumerate((0.5, 0.5, 1.0))])
        2
    """
    return len({tuple(sorted(r.policy.layers.items())) for r in history})


def repeats_message(history: list[EpisodeRecord]) -> str | None:
    """The warning for a search that evaluated the same policies again and again (more
    than :data:`REPEAT_WARNING_SHARE` repeats), else None."""
    distinct = distinct_policies(history)
    repeats = len(history) - distinct
    if not history or repeats <= REPEAT_WARNING_SHARE * len(history):
        return None
    return (
        f"only {distinct} of {len(history)} evaluations were distinct policies ({repeats} "
        "repeats, answered by the cache): the search kept choosing the same policies; "
        "with a tight budget use wall: scale (the default) and seed_policies, or more episodes"
    )


def dominates(a: dict[str, float], b: dict[str, float], objectives: tuple[str, ...]) -> bool:
    """Whether metrics ``a`` Pareto-dominate ``b`` on ``objectives``."""
    better_somewhere = False
    for key in objectives:
        sign = 1.0 if OBJECTIVES[key] == "max" else -1.0
        da, db = sign * a[key], sign * b[key]
        if da < db:
            return False
        better_somewhere |= da > db
    return better_somewhere


def pareto_front(
    records: list[EpisodeRecord], objectives: tuple[str, ...] = ("accuracy", "latency")
) -> list[EpisodeRecord]:
    """Feasible records not dominated by any other feasible record."""
    feasible = [r for r in records if r.feasible]
    return [
        r
        for r in feasible
        if not any(dominates(o.metrics, r.metrics, objectives) for o in feasible if o is not r)
    ]


@dataclass
class SearchResult:
    """What a search returns: the best feasible policy, the history and the Pareto set."""

    method: str
    history: list[EpisodeRecord] = field(default_factory=list)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    objectives: tuple[str, ...] = ("accuracy", "latency")
    seconds: float = 0.0

    @property
    def best(self) -> EpisodeRecord | None:
        """The feasible record with the highest reward (ties: the earliest)."""
        feasible = [r for r in self.history if r.feasible]
        return max(feasible, key=lambda r: (r.reward, -r.index)) if feasible else None

    @property
    def pareto(self) -> list[EpisodeRecord]:
        """The Pareto front over :attr:`objectives`."""
        return pareto_front(self.history, self.objectives)

    @property
    def distinct_policies(self) -> int:
        """How many different policies the history evaluated (by their layer settings)."""
        return distinct_policies(self.history)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON summary (history included)."""
        best = self.best
        return {
            "method": self.method,
            "evaluations": len(self.history),
            "distinct_policies": self.distinct_policies,
            "seconds": self.seconds,
            "baseline_metrics": self.baseline_metrics,
            "best": best.to_dict() if best else None,
            "pareto": [r.index for r in self.pareto],
            "history": [r.to_dict() for r in self.history],
        }
