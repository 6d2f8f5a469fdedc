"""``autoprune layers`` / ``models`` / ``datasets``: look before you search."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer
from rich.table import Table
from torch import nn

from autoprune.cli._common import shape_text
from autoprune.cli._console import print_table
from autoprune.cli._cost import layers_at, priced_model
from autoprune.cli._options import DATA_DIR, DATASET, INPUT_SHAPE, JSON_OUT, MODEL
from autoprune.compress import ChannelPlan
from autoprune.core.effective import FOLLOW_MARK
from autoprune.core.errors import AutopruneError
from autoprune.core.specs import LayerSpec
from autoprune.data import dataset_names
from autoprune.models import model_names


def layers_command(
    model: str = MODEL.option,
    dataset: str | None = DATASET.option,
    data_dir: Path | None = DATA_DIR.option,
    input_shape: str | None = INPUT_SHAPE.option,
    as_json: bool = JSON_OUT.option,
) -> None:
    """List the compressible layers of a model (shapes, MACs, params, coupling)."""
    net, shape, data_name = priced_model(model, dataset, data_dir, input_shape)
    specs = layers_at(net, shape, model)
    plan = _plan(net, shape)
    follows = plan.coupled if plan is not None else {}
    if as_json:
        rows = [{**s.to_dict(), "follows": follows.get(s.name)} for s in specs]
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{model} on {data_name}, input {shape_text(shape)}")
    for column in ("layer", "kind", "in", "out", "kernel", "stride", "in hw", "MACs", "params"):
        table.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for s in specs:
        table.add_row(
            _label(s, plan),
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
    if follows:
        table.caption = (
            f"{FOLLOW_MARK} X: pruned with layer X (residual add or depthwise); "
            "its own keep ratio is ignored"
        )
    print_table(table)


def _plan(net: nn.Module, input_shape: tuple[int, ...]) -> ChannelPlan | None:
    """The model's channel plan, or ``None`` when it has nothing the pruner can trace."""
    try:
        return ChannelPlan.build(net, torch.zeros((1, *input_shape)))
    except AutopruneError:  # e.g. no Conv2d/Linear runs: nothing is coupled
        return None


def _label(spec: LayerSpec, plan: ChannelPlan | None) -> str:
    """The layer's name, ``(fixed)`` when never pruned, ``↳ controller`` when coupled."""
    if plan is None or spec.name not in plan.shapes:
        return spec.name + ("" if spec.prunable else " (fixed)")
    controller = plan.controller(spec.name)
    if not spec.prunable or controller is None:
        return f"{spec.name} (fixed)"
    return spec.name if controller == spec.name else f"{spec.name} {FOLLOW_MARK} {controller}"


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
