"""The per-layer view of a search: each policy field as a table of layers × episodes.

The values are *effective* (:mod:`autoprune.core.effective`): a layer coupled to a controller
(a residual branch, a depthwise conv) shows the channels it really keeps, and its row is
labelled ``layer ↳ controller``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

from autoprune.core.effective import FOLLOW_MARK, EffectiveLayer, decided
from autoprune.core.policy import LayerPolicy
from autoprune.core.results import EpisodeRecord

LAYERS_DIR = "layers"
"""Artifact folder of the per-layer tables (``<field>.csv``) and heat-maps (``<field>.png``)."""
DIMENSIONS = ("keep_ratio", "sparsity", "w_bits", "a_bits")
"""The numeric fields of a :class:`~autoprune.core.policy.LayerPolicy`, in the modes' order."""


@dataclass(frozen=True)
class LayerTable:
    """Every episode's per-layer policy, one ``layers × episodes`` grid per field.

    Only the fields some episode changes from the uncompressed default (keep ratio 1,
    sparsity 0, fp32) are kept, so a ``prune`` search shows keep ratios and a ``quant``
    search bit-widths; a search that never compressed anything shows keep ratios.

    Example:
        >>> table = LayerTable.from_records(result.history)  # doctest: +SKIP
        >>> table.grids["keep_ratio"][0][3]  # first layer, fourth episode  # doctest: +SKIP
        0.5
    """

    layers: tuple[str, ...]
    episodes: tuple[int, ...]
    grids: dict[str, list[list[float]]]
    """Field name → ``grid[layer][episode column]`` (effective values)."""
    follows: dict[str, str] = dataclass_field(default_factory=dict)
    """Layer → the controller whose keep ratio it follows (coupled layers only)."""

    @property
    def labels(self) -> tuple[str, ...]:
        """Row labels: the layer names, ``layer ↳ controller`` for coupled layers."""
        return tuple(
            f"{n} {FOLLOW_MARK} {self.follows[n]}" if n in self.follows else n for n in self.layers
        )

    @classmethod
    def from_records(cls, records: Sequence[EpisodeRecord]) -> LayerTable:
        """The table of ``records`` (in episode order; layers in the policies' order)."""
        ordered = sorted(records, key=lambda r: r.index)
        layers: dict[str, None] = {}
        for record in ordered:
            layers.update(dict.fromkeys(record.policy.layer_names or record.policy.layers))
        views = [r.policy.effective_layers() for r in ordered]
        follows = {n: e.follows for view in views for n, e in view.items() if e.follows}
        default = decided(LayerPolicy())
        grids: dict[str, list[list[float]]] = {}
        for name in DIMENSIONS:
            grid = [[_value(view, layer, default, name) for view in views] for layer in layers]
            if any(v != getattr(default, name) for row in grid for v in row):
                grids[name] = grid
        if not grids:
            grids["keep_ratio"] = [[1.0 for _ in ordered] for _ in layers]
        return cls(tuple(layers), tuple(r.index for r in ordered), grids, follows)

    def csv_text(self, field: str) -> str:
        """``field`` as CSV: a ``layer`` column, then one column per episode index."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["layer", *self.episodes])
        bits = field.endswith("_bits")
        for name, row in zip(self.labels, self.grids[field], strict=True):
            writer.writerow([name, *(int(v) if bits else f"{v:.6g}" for v in row)])
        return out.getvalue()

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write ``layers/<field>.csv`` and ``layers/<field>.png`` under ``out_dir``; the
        keys are those relative paths."""
        from autoprune.tracking.plots import plot_layer_heatmap

        folder = out_dir / LAYERS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}
        for field, grid in self.grids.items():
            table = folder / f"{field}.csv"
            tmp = table.with_name(f".{table.name}.{os.getpid()}.tmp")
            tmp.write_text(self.csv_text(field))
            os.replace(tmp, table)
            files[f"{LAYERS_DIR}/{field}.csv"] = table
            image = folder / f"{field}.png"
            plot_layer_heatmap(grid, self.labels, self.episodes, field, image)
            files[f"{LAYERS_DIR}/{field}.png"] = image
        return files


def _value(
    view: dict[str, EffectiveLayer], layer: str, default: EffectiveLayer, name: str
) -> float:
    """One field of ``layer`` in one episode's effective view (``default`` when absent)."""
    return float(getattr(view.get(layer, default), name))
