"""Wire a :class:`SearchConfig` into the objects a search needs.

``prepare_search`` loads the data, the trained model (user weights or the cached baseline,
trained when missing), discovers the layers, builds the cost model and the evaluator, and
parses the budget. Every search method and every worker process calls it, so all of them
evaluate on exactly the same path. A model at chance level on the validation split (user
weights or not) is refused: a search on it would only measure noise.

``untrained_session`` builds the same session on an untrained model of the same
architecture, in seconds: what does not depend on trained weights (the layers, what can be
pruned, the MAC/parameter/bit/latency/energy floor of a budget) can be checked on it before
a baseline is trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from autoprune.compress import CompressionOptions
from autoprune.core.budget import Budget
from autoprune.core.device import resolve_device
from autoprune.core.errors import AutopruneError
from autoprune.core.specs import deployment_shape, discover_layers, parse_input_shape
from autoprune.core.training import (
    DEFAULT_TRAIN,
    EpochStats,
    ProgressFn,
    TrainConfig,
    chance_accuracy,
    majority_accuracy,
    model_device,
)
from autoprune.cost import HardwareProfile, load_profile
from autoprune.data import DataSplits, load_dataset
from autoprune.latency import build_cost_model, fit_latency_model
from autoprune.models import load_weights
from autoprune.workflow.baseline import BaselineRequest, build_for, load_baseline, train_baseline
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator
from autoprune.workflow.inputs import UserObjects, model_source


@dataclass
class SearchSession:
    """The prepared parts of one search."""

    config: SearchConfig
    data: DataSplits
    model: nn.Module
    weights_path: Path | None
    evaluator: PolicyEvaluator
    budget: Budget
    objects: UserObjects | None = None
    """The caller's objects this session was built from (None: everything by name)."""


def load_trained_model(
    config: SearchConfig,
    data: DataSplits,
    *,
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    objects: UserObjects | None = None,
    device: torch.device | None = None,
) -> tuple[nn.Module, Path | None]:
    """The caller's model object, the user's weights, or the cached baseline (trained now
    when missing), on ``device`` (default: the config's)."""
    device = device if device is not None else resolve_device(config.device)
    if objects is not None and objects.model is not None:
        return objects.trained_model().to(device), None
    if config.weights is not None:
        path = Path(config.weights)
        return load_weights(build_for(config.model, data), path).to(device), path
    baseline = train_baseline(
        baseline_request(config, data),
        data,
        config.runs_path / "checkpoints",
        on_batch=on_batch,
        on_epoch=on_epoch,
        device=device,
    )
    return baseline.model.to(device), baseline.weights_path


def baseline_request(config: SearchConfig, data: DataSplits) -> BaselineRequest:
    """The baseline a search without ``weights`` compresses (the zoo's training, seed 0)."""
    train_config = replace(DEFAULT_TRAIN.get(config.model, TrainConfig()), seed=0)
    return BaselineRequest(config.model, data.name, train_config)


def needs_training(
    config: SearchConfig, data: DataSplits, objects: UserObjects | None = None
) -> bool:
    """Whether :func:`prepare_search` would train a baseline (none given, none cached)."""
    if config.weights is not None or (objects is not None and objects.model is not None):
        return False
    root = config.runs_path / "checkpoints"
    return load_baseline(baseline_request(config, data), data, root) is None


def search_budget(config: SearchConfig) -> Budget:
    """The budget of ``config``; a search needs at least one target."""
    budget = Budget.parse(list(config.targets))
    if not budget.constraints:
        raise AutopruneError("a search needs at least one target; pass e.g. --target flops=0.5")
    return budget


def load_search_data(config: SearchConfig, data_dir: Path | None = None) -> DataSplits:
    """The dataset of ``config`` (files from ``data_dir``, else the config's ``data_dir``)."""
    folder = data_dir or (Path(config.data_dir) if config.data_dir else None)
    return load_dataset(config.dataset, data_dir=folder)


def evaluator_config(config: SearchConfig) -> EvaluatorConfig:
    """The evaluator settings of a search config."""
    return EvaluatorConfig(
        val_samples=config.val_samples,
        calib_batches=config.calib_batches,
        finetune_epochs=config.finetune_epochs,
        compression=CompressionOptions(
            importance=config.importance,
            round_to=config.round_to,
            reconstruct=config.reconstruct,
        ),
        seed=config.seed,
    )


def prepare_search(
    config: SearchConfig,
    *,
    data_dir: Path | None = None,
    lut_cache_dir: Path | None = None,
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    data: DataSplits | None = None,
    objects: UserObjects | None = None,
) -> SearchSession:
    """Load, train if needed, and build the evaluator and budget for ``config``.

    ``data``: the dataset, when the caller loaded it already (else it is loaded here).
    ``objects``: the caller's model, data, metric or fine-tuning, used instead of the
    config's names.

    Raises:
        AutopruneError: For a bad setting, unusable data, a failed training, or a model at
            chance level on the validation split.
    """
    budget = search_budget(config)
    profile = load_profile(config.profile)
    device = resolve_device(config.device)
    if data is None and objects is not None:
        data = objects.data
    data = data if data is not None else load_search_data(config, data_dir)
    model, weights = load_trained_model(
        config, data, on_batch=on_batch, on_epoch=on_epoch, objects=objects, device=device
    )
    session = _session(config, data, model, weights, budget, profile, lut_cache_dir, objects)
    _refuse_chance_level(session)
    return session


def untrained_session(
    config: SearchConfig, data: DataSplits, *, lut_cache_dir: Path | None = None
) -> SearchSession:
    """The session of ``config`` on an untrained model of the same architecture.

    For checks that need no trained weights (layers, prunable groups, budget floors other
    than ``size``); never search on it. The global random state is left as it was.
    """
    budget = search_budget(config)
    profile = load_profile(config.profile)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_for(config.model, data)
    return _session(config, data, model, None, budget, profile, lut_cache_dir)


def _session(
    config: SearchConfig,
    data: DataSplits,
    model: nn.Module,
    weights: Path | None,
    budget: Budget,
    profile: HardwareProfile,
    lut_cache_dir: Path | None,
    objects: UserObjects | None = None,
) -> SearchSession:
    shape = deployment_shape(parse_input_shape(config.input_shape), data.input_shape)
    specs = discover_layers(model, shape)  # priced at the deployment resolution
    cost_model = build_cost_model(
        profile, lut_cache_dir=lut_cache_dir or config.runs_path / "latency_lut"
    )
    device = model_device(model)
    priced = torch.zeros((1, *shape)) if shape != data.input_shape else data.head("val", 1)[0]
    cost_model = fit_latency_model(cost_model, model, priced.to(device), specs)
    source = model_source(config.model, data)
    if shape != data.input_shape:
        source["priced_at"] = list(shape)
    evaluator = PolicyEvaluator(
        model,
        data,
        specs,
        cost_model,
        evaluator_config(config),
        metric=objects.evaluate if objects is not None else None,
        finetune_fn=objects.finetune if objects is not None else None,
        source=source,
    )
    return SearchSession(config, data, model, weights, evaluator, budget, objects)


def _refuse_chance_level(session: SearchSession) -> None:
    """Refuse to search on a model that predicts no better than chance."""
    data = session.data
    if session.evaluator.metric is not None or data.num_classes is None:
        return  # a user's metric has no chance level we could know
    accuracy = session.evaluator.baseline_metrics["accuracy"]
    if accuracy > chance_accuracy(data):
        return
    raise AutopruneError(
        f"the model to compress ({session.weights_path}) scores {accuracy:.1%} on the "
        f"validation split of {data.name}, chance level for {data.num_classes} classes "
        f"(always answering the most frequent class scores {majority_accuracy(data):.1%}): a "
        "search on it would only measure noise; "
        + (
            "pass --weights trained on this dataset (and its normalisation), or omit "
            "--weights to train a baseline"
            if session.config.weights is not None
            else "retrain the cached baseline (autoprune train --force with the search's "
            "model and dataset), or pass --weights trained on this dataset"
        )
    )
