"""``autoprune cost``: per-layer cost table, and ``cost validate`` against measurement."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer
from rich.table import Table
from torch import nn

from autoprune.cli._common import dataset_for, open_dataset, shape_text
from autoprune.cli._console import console, err_console, print_table
from autoprune.cli._options import (
    DATA_DIR,
    DATASET,
    INPUT_SHAPE,
    JSON_OUT,
    MODEL,
    PROFILE,
    RUNS_DIR,
    SEED,
    TRACKING_URI,
    WEIGHTS,
    Flag,
)
from autoprune.cli._units import metric_label
from autoprune.compress import ChannelPlan, pruned_specs
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.specs import (
    LayerSpec,
    deployment_shape,
    discover_layers,
    parse_input_shape,
)
from autoprune.cost import MEASURED_PROFILE, CostReport, HardwareProfile, load_profile
from autoprune.latency import (
    build_cost_model,
    fit_latency_model,
    random_prune_policies,
    validate_latency,
)
from autoprune.models import build_model, default_dataset, default_num_classes, load_weights
from autoprune.workflow.baseline import build_for

cost_app = typer.Typer(
    help="Price a model (and a policy) on a hardware profile; validate the latency model.",
    invoke_without_command=True,
    no_args_is_help=False,
)

WEIGHTS_OPTION = WEIGHTS.but(shown="none; costs need only the shapes").option
MEASURED_PROFILE_OPTION = PROFILE.but(default=MEASURED_PROFILE).option
"""``cost validate``'s profile: it compares the latency model with measurement."""
POLICY_OPTION = Flag(("--policy",), "Policy JSON to price.", shown="none, the whole model").option


def _print_report(report: CostReport, title: str, hardware: HardwareProfile) -> None:
    caption = f"{metric_label('latency', hardware)}; {metric_label('energy', hardware)}"
    table = Table(title=title, caption=caption)
    for column in report.columns:
        table.add_column(column, justify="left" if column in ("layer", "bound") else "right")
    for row in report.to_rows():
        table.add_row(*row)
    print_table(table)
    if report.overhead_ms:
        console.print(
            f"total latency includes a fixed {report.overhead_ms:+.4f} ms per inference "
            "(the runtime's per-call cost, or the model's calibration offset)"
        )


def priced_model(
    model: str, dataset: str | None, data_dir: Path | None, input_shape: str | None
) -> tuple[nn.Module, tuple[int, ...], str]:
    """The eval-mode model, the input shape it is priced at and the name of its data.

    With ``input_shape`` and no dataset (given, or the zoo model's own) no data is read:
    the model is built for that shape with its default classes (torchvision's 1000).
    """
    shape = parse_input_shape(input_shape)
    if shape is not None and dataset is None and default_dataset(model) is None:
        net = build_model(
            model,
            in_channels=shape[0],
            num_classes=default_num_classes(model),
            input_size=(shape[1], shape[2]),
        )
        return net.eval(), shape, "no dataset"
    data = open_dataset(dataset_for(model, dataset), data_dir)
    return build_for(model, data).eval(), deployment_shape(shape, data.input_shape), data.name


def layers_at(net: nn.Module, shape: tuple[int, ...], model: str) -> list[LayerSpec]:
    """:func:`discover_layers` of ``net`` at ``shape``; a shape it cannot run is a usage error."""
    try:
        return discover_layers(net, shape)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutopruneError(
            f"model '{model}' does not run on input {shape_text(shape)} ({reason}); pass an "
            "--input-shape it accepts (a model with a flattening classifier runs only at the "
            "size it was built for)"
        ) from exc


@cost_app.callback()
def cost_command(
    ctx: typer.Context,
    model: str = MODEL.option,
    dataset: str | None = DATASET.option,
    profile: str = PROFILE.option,
    policy: Path | None = POLICY_OPTION,
    weights: Path | None = WEIGHTS_OPTION,
    data_dir: Path | None = DATA_DIR.option,
    input_shape: str | None = INPUT_SHAPE.option,
    runs_dir: Path = RUNS_DIR.option,
    as_json: bool = JSON_OUT.option,
) -> None:
    """Print the per-layer cost table of a model, or of a model under a policy."""
    if ctx.invoked_subcommand is not None:
        return
    hardware = load_profile(profile)
    net, shape, data_name = priced_model(model, dataset, data_dir, input_shape)
    if weights is not None:
        load_weights(net, weights)
    specs = layers_at(net, shape, model)
    chosen = Policy.load(policy, specs) if policy else Policy.identity(specs)
    example = torch.zeros((1, *shape))
    keep = chosen.keep_ratios()
    shaped = pruned_specs(specs, ChannelPlan.build(net, example), keep) if keep else specs
    cost_model = fit_latency_model(
        build_cost_model(hardware, lut_cache_dir=runs_dir / "latency_lut"), net, example, specs
    )
    report = cost_model.estimate(shaped, chosen.layers)
    if as_json:
        about = {"dataset": data_name, "input_shape": list(shape)}
        print(json.dumps({**about, **report.to_dict()}, indent=2))
        return
    title = (
        f"{model} on {data_name}, input {shape_text(shape)}, batch "
        f"{report.batch_size}, profile {hardware.name}"
    )
    _print_report(report, title, hardware)


@cost_app.command("validate")
def validate_command(
    model: str = MODEL.option,
    dataset: str | None = DATASET.option,
    profile: str = MEASURED_PROFILE_OPTION,
    samples: int = typer.Option(50, "--samples", help="Random policies to measure."),
    seed: int = SEED.option,
    data_dir: Path | None = DATA_DIR.option,
    runs_dir: Path = RUNS_DIR.option,
    tracking_uri: str | None = TRACKING_URI.option,
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log to MLflow."),
    as_json: bool = JSON_OUT.option,
) -> None:
    """Predicted vs measured latency over random pruning policies (Spearman, MAPE)."""
    if samples < 2:
        raise AutopruneError(f"--samples {samples} is too few; pass at least 2 (e.g. 50)")
    hardware = load_profile(profile)
    if hardware.kind != "measured":
        raise AutopruneError(
            f"profile '{hardware.name}' is modelled, not measured; validate a measured "
            "profile such as --profile cpu"
        )
    data = open_dataset(dataset_for(model, dataset), data_dir)
    net = build_for(model, data).eval()
    example = data.head("val", 1)[0]
    specs = discover_layers(net, data.input_shape)
    policies = random_prune_policies(specs, ChannelPlan.build(net, example), samples, seed=seed)
    err_console.print(f"fitting the latency model to {model} (first time on this machine) ...")
    cost_model = fit_latency_model(
        build_cost_model(hardware, lut_cache_dir=runs_dir / "latency_lut"), net, example, specs
    )
    err_console.print(f"measuring {samples} pruned variants of {model} ...")
    result = validate_latency(net, specs, cost_model, example, policies)
    summary = {"model": model, "profile": hardware.name, **result.summary()}
    summary["seconds"] = round(result.seconds, 2)
    if not no_mlflow:
        from autoprune.cli._tracking import log_validation

        summary["mlflow_run_id"] = log_validation(
            summary, result, tracking_uri, runs_dir, f"cost-validate__{model}"
        )
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    console.print(
        f"{model} on {hardware.name}: n={summary['n']}, Spearman {summary['spearman']:.3f}, "
        f"MAPE {summary['mape_percent']:.1f}% (probe speed {summary['speed']:.2f} of the "
        f"fastest seen, {summary['attempts']} window(s); {summary['seconds']}s)"
    )


def register(app: typer.Typer) -> None:
    """Add the ``cost`` group to ``app``."""
    app.add_typer(cost_app, name="cost")
