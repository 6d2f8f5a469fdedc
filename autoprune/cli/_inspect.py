"""``autoprune layers`` / ``models`` / ``datasets``: look before you search."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from autoprune.cli._common import dataset_for, open_dataset, shape_text
from autoprune.cli._console import print_table
from autoprune.cli._options import DATA_DIR, DATASET, JSON_OUT, MODEL
from autoprune.core.specs import discover_layers
from autoprune.data import dataset_names
from autoprune.models import model_names
from autoprune.workflow.baseline import build_for


def layers_command(
    model: str = MODEL.option,
    dataset: str | None = DATASET.option,
    data_dir: Path | None = DATA_DIR.option,
    as_json: bool = JSON_OUT.option,
) -> None:
    """List the compressible layers of a model (shapes, MACs, params)."""
    data = open_dataset(dataset_for(model, dataset), data_dir)
    specs = discover_layers(build_for(model, data), data.input_shape)
    if as_json:
        print(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    table = Table(title=f"{model} on {data.name}, input {shape_text(data.input_shape)}")
    for column in ("layer", "kind", "in", "out", "kernel", "stride", "in hw", "MACs", "params"):
        table.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for s in specs:
        table.add_row(
            s.name + ("" if s.prunable else " (fixed)"),
            s.kind,
            str(s.in_channels),
            str(s.out_channels),
            "x".join(map(str, s.kernel)),
            str(s.stride[0]),
            "x".join(map(str, s.in_hw)),
            f"{s.macs:,}",
            f"{s.params:,}",
        )
    table.add_row(
        "total",
        "",
        "",
        "",
        "",
        "",
        "",
        f"{sum(s.macs for s in specs):,}",
        f"{sum(s.params for s in specs):,}",
    )
    print_table(table)


def models_command() -> None:
    """List the model zoo."""
    for name in model_names():
        print(name)


def datasets_command() -> None:
    """List the named datasets (plus the npz:PATH and file.py:fn forms)."""
    for name in dataset_names():
        print(name)
    print("npz:PATH")
    print("path/to/file.py:function")


def register(app: typer.Typer) -> None:
    """Add the inspection commands to ``app``."""
    app.command("layers")(layers_command)
    app.command("models")(models_command)
    app.command("datasets")(datasets_command)
