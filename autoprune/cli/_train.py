"""``autoprune train``: train (or load the cached) baseline of a zoo model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from autoprune.cli._common import dataset_for, open_dataset
from autoprune.cli._console import QUIET, console, progress_bar
from autoprune.cli._options import (
    DATA_DIR,
    DATASET,
    DEVICE,
    JSON_OUT,
    LR,
    MODEL,
    RUNS_DIR,
    SEED,
    Flag,
)
from autoprune.core.device import resolve_device
from autoprune.core.training import DEFAULT_TRAIN, EpochStats, TrainConfig
from autoprune.workflow.baseline import BaselineRequest, build_for, train_baseline

SEED_OPTION = SEED.but(default=TrainConfig.seed).option
LR_OPTION = LR.but(shown="per model").option
EPOCHS_OPTION = Flag(("--epochs",), "Epochs.", shown="per model").option


def default_config(model: str, epochs: int | None, seed: int, lr: float | None) -> TrainConfig:
    """The model's default training settings with the user's overrides."""
    config = replace(DEFAULT_TRAIN.get(model, TrainConfig()), seed=seed)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    if lr is not None:
        config = replace(config, lr=lr)
    config.check()
    return config


def train_command(
    model: str = MODEL.option,
    dataset: str | None = DATASET.option,
    epochs: int | None = EPOCHS_OPTION,
    seed: int = SEED_OPTION,
    lr: float | None = LR_OPTION,
    data_dir: Path | None = DATA_DIR.option,
    runs_dir: Path = RUNS_DIR.option,
    force: bool = typer.Option(False, "--force", help="Retrain even if a checkpoint exists."),
    device: str = DEVICE.option,
    as_json: bool = JSON_OUT.option,
) -> None:
    """Train a baseline (SGD + cosine) and cache it; the same request reuses the checkpoint."""
    where = resolve_device(device)  # CUDA asked for where there is none: before any work
    data = open_dataset(dataset_for(model, dataset), data_dir)
    request = BaselineRequest(model, data.name, default_config(model, epochs, seed, lr))
    build_for(model, data)  # fail on a bad model name before any progress output
    from autoprune.cli import _console

    with progress_bar(f"train {model} on {data.name}") as progress:
        task = progress.add_task("train", total=None, info="")

        def on_batch(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, info=f"loss {loss:.3f}")

        def on_epoch(stats: EpochStats) -> None:
            progress.update(task, info=f"epoch {stats.epoch} val {stats.val_accuracy:.2%}")

        try:
            baseline = train_baseline(
                request,
                data,
                runs_dir / "checkpoints",
                force=force,
                on_batch=on_batch,
                on_epoch=on_epoch,
                device=where,
            )
        except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the cache holds only whole files
            exc.add_note("no baseline was saved; run the same command again to train it")
            raise
    summary = {**baseline.meta, "weights": str(baseline.weights_path), "cached": baseline.cached}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    if QUIET or _console.QUIET:
        print(baseline.weights_path)
        return
    origin = "loaded from cache" if baseline.cached else f"trained in {summary['train_seconds']}s"
    if "trained_lr" in summary:  # the requested lr diverged or stayed at chance level
        origin += f" at lr {summary['trained_lr']:g}, as lr {summary['lr']:g} did not learn"
    console.print(
        f"[bold]{model}[/] on [bold]{data.name}[/] ({origin}): "
        f"val {summary['val_accuracy']:.2%}, test {summary['test_accuracy']:.2%}\n"
        f"weights: {baseline.weights_path}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train")(train_command)
