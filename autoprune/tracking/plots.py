"""PNG plots of policies and searches (matplotlib, Agg canvas, no pyplot global state).

Every function draws one figure, writes it to ``path`` (parent folders are created) and
returns the path. Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas,
so plotting never changes the caller's matplotlib backend and never leaks open figures.
matplotlib is imported inside the functions to keep ``import autoprune.tracking.plots`` cheap.

Units follow :mod:`autoprune.core.budget`: latency in ms, energy in mJ, size in bytes (drawn in
kB), MACs as counts (drawn in millions); accuracy is a fraction (drawn in %).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import FLOAT_BITS, Policy
from autoprune.core.results import EpisodeRecord, SearchResult, pareto_front

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PARETO_AXES: dict[str, tuple[str, float]] = {
    "latency": ("latency (ms)", 1.0),
    "energy": ("energy (mJ)", 1.0),
    "size": ("model size (kB)", 1e-3),
    "macs": ("MACs (millions)", 1e-6),
}
"""Metrics that :func:`plot_pareto` can put on the x axis: (axis label, display scale)."""

_FLOAT_BAR = 10.0
"""Bar height that stands for float (32-bit) weights or activations in the bit-width panel."""
_DPI = 120


def _new_figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig: Figure, path: str | Path) -> Path:
    """Write the PNG through a temporary file, so an interruption leaves no half image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize="small")


def _integer_x(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _bits_height(bits: int) -> float:
    return _FLOAT_BAR if bits == FLOAT_BITS else float(bits)


def plot_policy(policy: Policy, path: str | Path, title: str | None = None) -> Path:
    """Bar chart of a policy: keep ratio (and sparsity) above, weight/activation bits below.

    The values are effective (:meth:`~autoprune.core.policy.Policy.effective_layers`): a
    layer coupled to a controller shows the channels it really keeps, is labelled
    ``layer ↳ controller`` and its keep bar is hatched.

    Args:
        policy: The policy to draw; layers are shown in ``policy.layer_names`` order.
        path: Where to write the PNG.
        title: Figure title; defaults to one naming the policy's accuracy when known.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    names = [n for n in (policy.layer_names or list(policy.layers)) if n in policy.layers]
    view = policy.effective_layers()
    layers = [view[n] for n in names]
    labels = [lp.label(n) for n, lp in zip(names, layers, strict=True)]
    xs = list(range(len(names)))
    quantized = any(lp.w_bits != FLOAT_BITS or lp.a_bits != FLOAT_BITS for lp in layers)
    height = max(6.0, 4.5 + 0.06 * max(map(len, labels), default=0))  # room for the labels
    if not quantized:  # prune mode: no bits panel of fp32 bars
        height -= 2.5
    fig, axes = _new_figure(max(6.0, 0.35 * len(names) + 2.0), height, rows=2 if quantized else 1)
    top = axes[0][0]
    width = 0.4
    keep = top.bar(
        [x - width / 2 for x in xs], [lp.keep_ratio for lp in layers], width, label="keep ratio"
    )
    for bar, layer in zip(keep, layers, strict=True):
        if layer.follows is not None:
            bar.set_hatch("//")
    if any(lp.sparsity > 0 for lp in layers):
        top.bar(
            [x + width / 2 for x in xs], [lp.sparsity for lp in layers], width, label="sparsity"
        )
    top.set_ylim(0.0, 1.05)
    top.set_ylabel("kept / zeroed fraction")
    _legend(top)
    named = top
    if quantized:
        named = axes[1][0]
        _bits_panel(named, xs, layers, width)
        top.set_xticks(xs, [])  # the layers are named once, under the bit-widths
    named.set_xticks(xs, labels, rotation=60, ha="right", fontsize="small")
    for row in axes:
        row[0].grid(axis="y", alpha=0.3)
    named.set_xlabel("layer")
    if not names:
        _note(top, "policy has no layers")
    fig.suptitle(title or _policy_title(policy))
    return _save(fig, path)


def _bits_panel(ax: Any, xs: list[int], layers: list[Any], width: float) -> None:
    """Weight and activation bits per layer (fp32 drawn as a grey-labelled tall bar)."""
    w_bits = [_bits_height(lp.w_bits) for lp in layers]
    a_bits = [_bits_height(lp.a_bits) for lp in layers]
    ax.bar([x - width / 2 for x in xs], w_bits, width, label="weight bits")
    ax.bar([x + width / 2 for x in xs], a_bits, width, label="activation bits")
    ax.set_yticks([1, 2, 4, 6, 8, _FLOAT_BAR], ["1", "2", "4", "6", "8", "fp32"])
    ax.set_ylim(0.0, _FLOAT_BAR + 0.5)
    ax.set_ylabel("bit-width (bits)")
    _legend(ax)


def _policy_title(policy: Policy) -> str:
    accuracy = policy.metrics.get("accuracy")
    if accuracy is None:
        return "Per-layer policy"
    return f"Per-layer policy (validation accuracy {100 * accuracy:.2f}%)"


def _best(records: Sequence[EpisodeRecord]) -> EpisodeRecord | None:
    return SearchResult(method="", history=list(records)).best


def _has(record: EpisodeRecord, keys: tuple[str, ...]) -> bool:
    return all(math.isfinite(record.metrics.get(k, math.nan)) for k in keys)


def _draw_pareto(ax: Axes, records: Sequence[EpisodeRecord], x: str) -> None:
    if x not in PARETO_AXES:
        raise AutopruneError(
            f"cannot plot accuracy against '{x}'; choose x from: {', '.join(PARETO_AXES)}"
        )
    label, scale = PARETO_AXES[x]
    ax.set_xlabel(label)
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    usable = [r for r in records if _has(r, ("accuracy", x))]
    if not usable:
        _note(ax, f"no evaluation measured {x}")
        return

    def coords(rs: Sequence[EpisodeRecord]) -> tuple[list[float], list[float]]:
        return [r.metrics[x] * scale for r in rs], [100 * r.metrics["accuracy"] for r in rs]

    infeasible = [r for r in usable if not r.feasible]
    feasible = [r for r in usable if r.feasible]
    if infeasible:
        ax.scatter(*coords(infeasible), marker="x", color="tab:red", alpha=0.6, label="infeasible")
    if feasible:
        ax.scatter(*coords(feasible), color="tab:blue", alpha=0.5, s=18, label="feasible")
    front = sorted(pareto_front(list(usable), ("accuracy", x)), key=lambda r: r.metrics[x])
    if front:
        ax.step(*coords(front), where="post", color="tab:orange", lw=1.5)
        ax.scatter(*coords(front), color="tab:orange", s=30, zorder=3, label="Pareto front")
    best = _best(usable)
    if best is not None:
        star: dict[str, Any] = {
            "marker": "*",
            "s": 220,
            "color": "gold",
            "edgecolor": "black",
            "zorder": 4,
        }
        ax.scatter(*coords([best]), **star, label=f"best (episode {best.index})")
    _legend(ax)


def plot_pareto(records: Sequence[EpisodeRecord], path: str | Path, x: str = "latency") -> Path:
    """Scatter of accuracy against one cost for every evaluated policy.

    Feasible policies are dots, infeasible ones crosses; the Pareto front over
    (accuracy, ``x``) is an orange staircase and the best policy (highest reward among
    feasible ones) a star.

    Args:
        records: Evaluated policies.
        path: Where to write the PNG.
        x: The cost on the x axis: ``latency``, ``energy``, ``size`` or ``macs``.

    Raises:
        AutopruneError: when ``x`` is not one of those names.
    """
    fig, axes = _new_figure(6.5, 4.5)
    _draw_pareto(axes[0][0], records, x)
    fig.suptitle(f"Accuracy vs {x} ({len(records)} evaluations)")
    return _save(fig, path)


def plot_pareto_grid(
    records: Sequence[EpisodeRecord],
    path: str | Path,
    xs: tuple[str, ...] = ("latency", "energy", "size"),
) -> Path:
    """:func:`plot_pareto` for several costs side by side (latency, energy, size by default)."""
    fig, axes = _new_figure(5.0 * len(xs), 4.5, cols=len(xs))
    for ax, x in zip(axes[0], xs, strict=True):
        _draw_pareto(ax, records, x)
        ax.set_title(f"accuracy vs {x}")
    fig.suptitle(f"Evaluated policies ({len(records)} evaluations)")
    return _save(fig, path)


def _best_so_far(values: Sequence[float | None]) -> list[float]:
    out: list[float] = []
    best = -math.inf
    for value in values:
        if value is not None and value > best:
            best = value
        out.append(best if math.isfinite(best) else math.nan)
    return out


def plot_reward_curve(records: Sequence[EpisodeRecord], path: str | Path) -> Path:
    """Reward of every evaluation and the best feasible reward so far."""
    fig, axes = _new_figure(7.0, 4.0)
    ax = axes[0][0]
    ordered = sorted(records, key=lambda r: r.index)
    steps = [r.index for r in ordered]
    for feasible, colour, label in (
        (True, "tab:blue", "feasible"),
        (False, "tab:red", "infeasible"),
    ):
        chosen = [r for r in ordered if r.feasible is feasible]
        if chosen:
            xy = ([r.index for r in chosen], [r.reward for r in chosen])
            ax.scatter(*xy, s=12, alpha=0.6, color=colour, label=f"reward ({label})")
    best = _best_so_far([r.reward if r.feasible else None for r in ordered])
    ax.step(steps, best, where="post", color="tab:orange", lw=2, label="best feasible so far")
    if not ordered:
        _note(ax, "no evaluations yet")
    _integer_x(ax)
    ax.set_xlabel("evaluation (episode)")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    _legend(ax)
    fig.suptitle("Reward per episode")
    return _save(fig, path)


def plot_comparison(results: Mapping[str, SearchResult], path: str | Path) -> Path:
    """Best feasible validation accuracy so far against evaluations, one line per method.

    Args:
        results: Search results keyed by the label to show (usually the method name).
        path: Where to write the PNG.
    """
    fig, axes = _new_figure(7.0, 4.5)
    ax = axes[0][0]
    baseline = None
    for label, result in results.items():
        ordered = sorted(result.history, key=lambda r: r.index)
        values = [
            r.metrics["accuracy"] * 100 if r.feasible and _has(r, ("accuracy",)) else None
            for r in ordered
        ]
        curve = _best_so_far(values)
        final = next((v for v in reversed(curve) if not math.isnan(v)), math.nan)
        name = f"{label} (best {final:.2f}%)" if math.isfinite(final) else f"{label} (none)"
        ax.step(range(1, len(curve) + 1), curve, where="post", lw=1.8, label=name)
        baseline = baseline or result.baseline_metrics.get("accuracy")
    if baseline is not None:
        ax.axhline(100 * baseline, color="grey", ls="--", lw=1, label="uncompressed model")
    if not results:
        _note(ax, "no searches to compare")
    _integer_x(ax)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best feasible validation accuracy (%)")
    ax.grid(alpha=0.3)
    _legend(ax)
    fig.suptitle("Search methods compared")
    return _save(fig, path)


LAYER_DIMENSIONS: dict[str, str] = {
    "keep_ratio": "keep ratio (fraction of channels kept)",
    "sparsity": "sparsity (fraction of weights zeroed)",
    "w_bits": "weight bits (grey: fp32)",
    "a_bits": "activation bits (grey: fp32)",
}
"""Per-layer policy fields :func:`plot_layer_heatmap` can draw, with their colour-bar label."""


def plot_layer_heatmap(
    values: Sequence[Sequence[float]],
    layers: Sequence[str],
    episodes: Sequence[int],
    dimension: str,
    path: str | Path,
) -> Path:
    """Heat-map of one policy field, layers (rows) × episodes (columns).

    Args:
        values: ``values[i][j]`` is layer ``layers[i]``'s field in episode ``episodes[j]``.
        layers: Row labels, in the model's order (``layer ↳ controller`` for coupled ones).
        episodes: Column labels (episode indices).
        dimension: A key of :data:`LAYER_DIMENSIONS`; for bit-widths, fp32 cells are grey.
        path: Where to write the PNG.
    """
    import numpy as np

    if dimension not in LAYER_DIMENSIONS:
        raise AutopruneError(
            f"cannot draw '{dimension}' per layer; use one of: {', '.join(LAYER_DIMENSIONS)}"
        )
    grid = np.asarray(values, dtype=float).reshape(len(layers), len(episodes))
    bits = dimension.endswith("_bits")
    if bits:
        grid = np.where(grid == FLOAT_BITS, np.nan, grid)
    height = min(14.0, max(3.0, 0.28 * len(layers) + 1.8))
    width = min(16.0, max(6.0, 0.06 * len(episodes) + 4.0))
    fig, axes = _new_figure(width, height)
    ax = axes[0][0]
    if grid.size:
        cmap = _heat_cmap()
        low, high = (1.0, 8.0) if bits else (0.0, 1.0)
        image = ax.imshow(
            np.ma.masked_invalid(grid),
            aspect="auto",
            cmap=cmap,
            vmin=low,
            vmax=high,
            interpolation="nearest",
        )
        fig.colorbar(image, ax=ax, label=LAYER_DIMENSIONS[dimension])
    else:
        _note(ax, "no episodes yet")
    step = max(1, len(layers) // 40)
    ax.set_yticks(range(0, len(layers), step), list(layers)[::step], fontsize="small")
    columns = list(range(len(episodes)))
    ax.set_xticks(columns[:: max(1, len(columns) // 12)])
    ax.set_xticklabels([str(episodes[c]) for c in columns[:: max(1, len(columns) // 12)]])
    ax.set_xlabel("episode")
    ax.set_ylabel("layer")
    fig.suptitle(f"{dimension} per layer and episode")
    return _save(fig, path)


def _heat_cmap() -> Any:
    from matplotlib import colormaps

    return colormaps["viridis"].with_extremes(bad="lightgrey")
