"""``autoprune apply`` and ``autoprune export``: use a discovered policy."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from autoprune import api
from autoprune.cli._apply_report import print_apply_report, report_json, warn_latency_disagreement
from autoprune.cli._common import dataset_for, resolve_data_dir
from autoprune.cli._console import console, err_console, progress_bar
from autoprune.cli._options import (
    DATA_DIR,
    DATASET,
    DEVICE,
    JSON_OUT,
    LR,
    MODEL,
    PROFILE,
    RUNS_DIR,
    TRACKING_URI,
    WEIGHTS,
    Flag,
)
from autoprune.cli._runs import resolve_run
from autoprune.core.errors import AutopruneError
from autoprune.core.training import FINETUNE_LR
from autoprune.cost import load_profile
from autoprune.searches.finished_search import find_search
from autoprune.system.atomic_dir import write_atomic
from autoprune.tracking import read_best_policy
from autoprune.workflow.config import SearchConfig

FINETUNE_LR_OPTION = LR.but(default=FINETUNE_LR).option
"""``apply --lr``: the library's fine-tuning learning rate by default."""
OUTPUT_OPTION = Flag(("--output", "-o"), "Write to a file.", shown="print it").option
EXPORT_OPTION = Flag(("--export",), "Output folder.", shown="RUNS_DIR/exports/NAME").option


def apply_command(
    policy_path: Path = typer.Argument(
        ...,
        metavar="POLICY|RUN",
        help="Policy JSON, or a finished search's run name or MLflow run id.",
    ),
    model: str | None = MODEL.from_run,
    weights: Path | None = WEIGHTS.from_run,
    dataset: str | None = DATASET.from_run,
    finetune_epochs: int = typer.Option(0, "--finetune-epochs", help="Fine-tuning epochs."),
    lr: float = FINETUNE_LR_OPTION,
    export: Path | None = EXPORT_OPTION,
    profile: str | None = PROFILE.from_run,
    data_dir: Path | None = DATA_DIR.option,
    runs_dir: Path = RUNS_DIR.option,
    as_json: bool = JSON_OUT.option,
    reapply_policy: bool = typer.Option(
        False,
        "--reapply-policy",
        help="For a deep-compression or admm search: apply its policy to the original "
        "weights instead of shipping the method's own retrained model.",
    ),
    device: str = DEVICE.option,
) -> None:
    """Apply a policy to a trained model: compress, fine-tune, export .pt/.onnx/.apz, report.

    Given a run (``autoprune apply RUN``), the model, dataset, weights and profile default to
    the ones the search used.
    """
    if finetune_epochs < 0:
        raise AutopruneError(f"--finetune-epochs {finetune_epochs} must be 0 or more")
    run = None if policy_path.is_file() else find_search(str(policy_path), runs_dir)
    if run is None and not policy_path.is_file():
        raise AutopruneError(
            f"no such run or file '{policy_path}': pass a policy JSON file, or the run name "
            f"or MLflow run id 'autoprune search' printed (searches under "
            f"{runs_dir / 'searches'}; --runs-dir for another root)"
        )
    if weights is None and run is None:
        raise AutopruneError(
            "--weights is required with a policy file: pass the trained state dict the "
            "policy was searched on (the checkpoint 'autoprune search' printed), or apply "
            "the search by its run name or run id"
        )
    if run is None:
        dataset = dataset_for(model or SearchConfig.model, dataset)
    if export is None:  # the API writes files only when asked; the command always does
        export = runs_dir / "exports" / (run.name if run is not None else policy_path.stem)
    profile = profile or (run.config.profile if run is not None else SearchConfig.profile)
    hardware = load_profile(profile)
    with progress_bar("fine-tune") as progress:
        task = progress.add_task("fine-tune", total=None, info="", visible=finetune_epochs > 0)

        def on_batch(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, info=f"loss {loss:.3f}")

        result = api.apply(
            policy_path,
            model,
            dataset,
            weights,
            finetune_epochs,
            export,
            lr=lr,
            profile=profile,
            runs_dir=runs_dir,
            data_dir=resolve_data_dir(data_dir),
            on_batch=on_batch,
            reapply_policy=reapply_policy,
            device=device,
        )
    if result.finetune:
        _print_finetune(result.finetune, result.compressed["val_accuracy"], as_json)
    if as_json:
        print(json.dumps(report_json(result, hardware), indent=2))
        warn_latency_disagreement(result, hardware)
        return
    if run is not None:
        title = f"{run.config.model} under the best policy of search '{run.name}'"
    else:
        title = f"{model or SearchConfig.model} under {policy_path.name}"
    print_apply_report(result, title, hardware)
    _print_provenance(result.evaluation)
    if result.trimmed:
        pruned = sum(result.trimmed.values())
        after = " after fine-tuning" if result.finetune.get("kept") else ""
        console.print(
            f"size budget: {pruned:,} more weights pruned{after} so that the coded "
            "file meets the policy's size target (smallest kept weights)"
        )
    for kind, path in result.files.items():
        console.print(f"  {kind}: {path}")


def _print_finetune(finetune: dict, before: float, as_json: bool) -> None:
    """Say whether the retrained model was kept, on how many validation images (a kept one
    only in the report, not around ``--json`` output)."""
    images = f"{finetune['val_images']:,} validation images"
    after = finetune["val_accuracy"]
    if finetune["kept"]:
        if as_json:
            return
        console.print(
            f"fine-tune kept: validation accuracy {before:.4f} -> {after:.4f} on {images}"
        )
        return
    diverged = any(a["diverged"] for run in finetune["retrain"] for a in run["attempts"])
    why = " (some attempts diverged and were retried at a lower --lr)" if diverged else ""
    err_console.print(
        f"[yellow]warning:[/] fine-tuning did not raise the validation accuracy on {images} "
        f"({after:.4f} against {before:.4f}){why}; the model before fine-tuning is exported "
        "(try more --finetune-epochs)",
        highlight=False,
    )


def _print_provenance(evaluation: dict) -> None:
    """Say whether val_accuracy repeats the search's score, and on which images."""
    images = f"{evaluation['val_images']:,} validation images"
    if not evaluation["recorded"]:
        err_console.print(
            f"[yellow]warning:[/] the policy does not record how it was scored; val_accuracy "
            f"used the default search settings on {images}"
        )
    elif not evaluation["same_images"]:
        err_console.print(
            f"[yellow]warning:[/] these {images} are not the ones the search scored the policy "
            "on (other dataset files or split); val_accuracy is not comparable with the search"
        )
    else:
        searched = evaluation["search_val_accuracy"]
        scored = "" if searched is None else f" (the search scored {searched:.4f})"
        if "shipped" in evaluation:
            console.print(
                f"val_accuracy: the method's own retrained model ({evaluation['shipped']}; "
                f"--reapply-policy compresses the original weights instead) on the search's "
                f"{images}{scored}"
            )
            return
        console.print(
            f"val_accuracy: before fine-tuning, the search's evaluation repeated on its "
            f"{images}{scored}"
        )


def export_command(
    run: str = typer.Argument(
        ..., metavar="RUN", help="MLflow run id or run name (as for search --resume)."
    ),
    fmt: str = typer.Option("json", "--format", "-f", help="json or yaml."),
    output: Path | None = OUTPUT_OPTION,
    runs_dir: Path = RUNS_DIR.option,
    tracking_uri: str | None = TRACKING_URI.from_run,
) -> None:
    """Print (or write) the best policy of a recorded search, by run id or run name."""
    if fmt not in ("json", "yaml"):
        raise AutopruneError(f"unknown format '{fmt}'; use --format json or --format yaml")
    policy = read_best_policy(*resolve_run(run, runs_dir, tracking_uri))
    data = policy.to_dict()
    text = json.dumps(data, indent=2) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
    if output is None:
        print(text)
        return
    if output.is_dir():
        raise AutopruneError(
            f"-o {output} is a folder; pass a file path such as {output / ('policy.' + fmt)}"
        )
    write_atomic(output, text)
    console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``apply`` and ``export`` to ``app``."""
    app.command("apply")(apply_command)
    app.command("export")(export_command)
