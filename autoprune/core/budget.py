"""Budgets: hard limits on MACs/FLOPs, params, model size, latency or energy.

A constraint is written ``KEY=VALUE``. A bare number in (0, 1], a percentage up to 100%, a
ratio (``size=1/40``) or a reduction factor (``size=40x``: forty times smaller) is a
fraction of the uncompressed model (``flops=0.5``, ``latency=60%``); a number with a
unit, or a bare number above 100, is absolute (``latency=2ms``, ``size=50KB``,
``flops=10M``, ``energy=0.3mJ``, ``params=20000``, ``bits=26.7KB``).

Refused as typos rather than read as budgets: a fraction above 1 (``flops=1.7``,
``flops=170%``: it would allow more than the uncompressed model), a bare count in (1, 100]
for ``flops``/``macs``, ``params``, ``size`` and ``bits`` (no network has 1.7 MACs or 50
bytes: it is a mistyped fraction or a missing unit), and a bare number above 1 for
``latency`` and ``energy``, which is ambiguous (a fraction above 1, or milliseconds /
millijoules without the unit) and so needs a unit to be absolute (``latency=1.7ms``).

Metric units inside autoprune: MACs and params are counts, size is bytes, bits is bits,
latency is milliseconds, energy is millijoules. ``flops`` is an alias of ``macs`` (AMC
counted multiply-accumulates and called them FLOPs).

Two size targets:

* ``size``: the bytes of the ``.apz`` file ``autoprune apply`` writes (codes, indices,
  codebooks, Huffman tables, biases, BatchNorm tensors, header), predicted from the
  trained weights; the weight-free analytic estimate where no weights are known.
* ``bits``: the count of Yang et al. 2020, Σ weight bits x nonzero weights (no indices,
  codebooks or biases), the number papers report. Its value is in bits; byte units are
  accepted and converted (``bits=26.7KB`` is 213,600 bits), as are ``kbit`` and ``Mbit``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from autoprune.core.errors import AutopruneError

METRICS = ("macs", "params", "size", "bits", "latency", "energy")
ALIASES = {
    "flops": "macs",
    "mac": "macs",
    "bytes": "size",
    "model_size": "size",
    "yang_bits": "bits",
}
_BYTES = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024, "mib": 1024**2}
_UNITS: dict[str, dict[str, float]] = {
    "macs": {"": 1, "k": 1e3, "m": 1e6, "g": 1e9},
    "params": {"": 1, "k": 1e3, "m": 1e6, "g": 1e9},
    "size": {"": 1, **_BYTES},
    "bits": {"": 1, "bit": 1, "kbit": 1e3, "mbit": 1e6, **{u: 8 * f for u, f in _BYTES.items()}},
    "latency": {"ms": 1, "s": 1e3, "us": 1e-3},
    "energy": {"mj": 1, "j": 1e3, "uj": 1e-3},
}
_SMALLEST_BARE_COUNT = 100.0
"""A bare count at or below this (and above 1) is refused for the count metrics."""
_EXAMPLES = {"macs": "10M", "params": "20K", "size": "50KB", "bits": "26.7KB"}
_RATIO = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*([0-9]*\.?[0-9]+)|(x))\s*$", re.IGNORECASE)
_VALUE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(%|[a-z]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Constraint:
    """One hard limit.

    Example:
        >>> c = Constraint.parse("latency=60%")
        >>> (c.metric, c.value, c.relative, c.limit({"latency": 5.0}))
        ('latency', 0.6, True, 3.0)
    """

    metric: str
    value: float
    relative: bool

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``KEY=VALUE`` (see the module docstring for the forms)."""
        key, sep, raw = text.partition("=")
        if not sep:
            raise AutopruneError(
                f"target '{text}' has no '='; write KEY=VALUE such as flops=0.5 or latency=2ms"
            )
        return cls.from_value(key, raw)

    @classmethod
    def from_value(cls, key: str, raw: str | float) -> Constraint:
        """Build from a key and a number or string value."""
        metric = ALIASES.get(key.strip().lower(), key.strip().lower())
        if metric not in METRICS:
            raise AutopruneError(
                f"unknown budget key '{key}'; use one of: flops, macs, params, size, bits, "
                "latency, energy"
            )
        ratio = _ratio(metric, str(raw))
        if ratio is not None:
            if ratio > 1.0:
                raise _above_one(key, raw, metric)
            return cls(metric, ratio, relative=True)
        match = _VALUE.match(str(raw))
        if match is None:
            raise AutopruneError(
                f"cannot parse budget value '{raw}' for {metric}; write e.g. {metric}=0.5 "
                f"(fraction) or {metric}=50%"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
        if not math.isfinite(number):
            raise AutopruneError(
                f"budget {metric}={raw} is not a finite number (too large for a float); "
                f"write e.g. {metric}=0.5 (fraction) or {metric}=50%"
            )
        if number <= 0:
            raise AutopruneError(f"budget {metric}={raw} must be positive")
        if unit == "%" or (unit == "" and number <= 1.0):
            fraction = number / 100.0 if unit == "%" else number
            if fraction > 1.0:
                raise _above_one(key, raw, metric)
            return cls(metric, fraction, relative=True)
        if unit == "" and (metric in ("latency", "energy") or number <= _SMALLEST_BARE_COUNT):
            raise _above_one(key, raw, metric)
        units = _UNITS[metric]
        if unit not in units:
            raise AutopruneError(
                f"unit '{unit or '(none)'}' is not valid for {metric}; use one of: "
                + ", ".join(u or "(none)" for u in units)
                + ", or a fraction such as 0.5"
            )
        return cls(metric, number * units[unit], relative=False)

    def limit(self, baseline: Mapping[str, float]) -> float:
        """The absolute limit, given the uncompressed model's metrics."""
        return self.value * baseline[self.metric] if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.metric}={self.value:g}" + ("x" if self.relative else "")


@dataclass(frozen=True)
class Budget:
    """A conjunction of hard constraints (an empty budget allows anything).

    Example:
        >>> b = Budget.parse(["flops=0.5", "size=50KB"])
        >>> b.limits({"macs": 1e6, "size": 1e6})
        {'macs': 500000.0, 'size': 50000.0}
        >>> b.satisfied({"macs": 4e5, "size": 4e4}, {"macs": 1e6, "size": 1e6})
        True
    """

    constraints: tuple[Constraint, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str] | Mapping[str, str | float] | None) -> Budget:
        """Parse ``["flops=0.5", ...]`` or ``{"flops": 0.5, ...}``."""
        if items is None:
            return cls()
        if isinstance(items, Mapping):
            parsed = [Constraint.from_value(k, v) for k, v in items.items()]
        else:
            parsed = [Constraint.parse(item) for item in items]
        metrics = [c.metric for c in parsed]
        duplicated = {m for m in metrics if metrics.count(m) > 1}
        if duplicated:
            raise AutopruneError(f"budget names {sorted(duplicated)} twice; give each key once")
        return cls(tuple(parsed))

    @property
    def metrics(self) -> tuple[str, ...]:
        """The constrained metrics."""
        return tuple(c.metric for c in self.constraints)

    def limits(self, baseline: Mapping[str, float]) -> dict[str, float]:
        """Absolute limit per constrained metric."""
        return {c.metric: c.limit(baseline) for c in self.constraints}

    def usage(
        self, metrics: Mapping[str, float], baseline: Mapping[str, float]
    ) -> dict[str, float]:
        """Fraction of each limit used (<= 1 means satisfied)."""
        return {m: metrics[m] / limit for m, limit in self.limits(baseline).items()}

    def satisfied(
        self, metrics: Mapping[str, float], baseline: Mapping[str, float], rtol: float = 1e-9
    ) -> bool:
        """Whether every constraint holds."""
        return all(u <= 1.0 + rtol for u in self.usage(metrics, baseline).values())

    def to_dict(self) -> dict[str, str]:
        """JSON form that :meth:`parse` reads back."""
        out = {}
        for c in self.constraints:
            out[c.metric] = f"{c.value}" if c.relative else _absolute_text(c)
        return out

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.constraints) or "none"


def _ratio(metric: str, raw: str) -> float | None:
    """The fraction written as ``1/40`` or ``40x`` (forty times smaller; ``0.5x`` is half),
    or None for another form.

    Example:
        >>> [_ratio("size", text) for text in ("1/40", "40x", "0.5x", "5KB")]
        [0.025, 0.025, 0.5, None]
    """
    match = _RATIO.match(raw)
    if match is None:
        return None
    number = float(match.group(1))
    if match.group(3):
        number = 1.0 / number if number > 1.0 else number
    elif float(match.group(2)) > 0:
        number /= float(match.group(2))
    else:
        number = 0.0
    if number <= 0:
        raise AutopruneError(f"budget {metric}={raw} must be positive; write e.g. {metric}=1/40")
    return number


def _above_one(key: str, raw: str | float, metric: str) -> AutopruneError:
    """The error for a budget that reads as a fraction above 1 (a typo, not a budget)."""
    key, raw = key.strip(), str(raw).strip()
    if metric in ("latency", "energy"):
        unit = "ms" if metric == "latency" else "mJ"
        return AutopruneError(
            f"budget {key}={raw} has no unit, so it reads as a fraction of the original above "
            f"1; write a fraction such as {key}=0.7 (70% of the original) or give the unit of "
            f"an absolute value, e.g. {key}={raw}{unit}"
        )
    return AutopruneError(
        f"budget {key}={raw} reads as a fraction above 1, which would allow more than the "
        f"uncompressed model; write a fraction such as {key}=0.7 (70% of the original) or an "
        f"absolute value like {key}={_EXAMPLES[metric]}"
    )


def _absolute_text(c: Constraint) -> str:
    units = {"latency": "ms", "energy": "mJ", "size": "B", "bits": "bit", "macs": "", "params": ""}
    unit = units[c.metric]
    return f"{c.value:.12g}{unit}"
