"""Wire a :class:`SearchConfig` into the objects a search needs.

``prepare_search`` loads the data, the trained model (user weights or the cached baseline,
trained when missing), discovers the layers, builds the cost model and the evaluator, and
parses the budget. Every search method and every worker process calls it, so all of them
evaluate on exactly the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from autoprune.baseline import BaselineRequest, build_for, train_baseline
from autoprune.budget import Budget
from autoprune.compress import CompressionOptions
from autoprune.config import SearchConfig
from autoprune.cost import build_cost_model, load_profile
from autoprune.data import DataSplits, load_dataset
from autoprune.errors import AutopruneError
from autoprune.evaluation import EvaluatorConfig, PolicyEvaluator
from autoprune.latency_model import fit_latency_model
from autoprune.models import load_weights
from autoprune.specs import discover_layers
from autoprune.training import DEFAULT_TRAIN, EpochStats, ProgressFn, TrainConfig


@dataclass
class SearchSession:
    """The prepared parts of one search."""

    config: SearchConfig
    data: DataSplits
    model: nn.Module
    weights_path: Path | None
    evaluator: PolicyEvaluator
    budget: Budget


def load_trained_model(
    config: SearchConfig,
    data: DataSplits,
    *,
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> tuple[nn.Module, Path]:
    """The user's weights, or the cached baseline (trained now when missing)."""
    if config.weights is not None:
        path = Path(config.weights)
        return load_weights(build_for(config.model, data), path), path
    train_config = replace(DEFAULT_TRAIN.get(config.model, TrainConfig()), seed=0)
    request = BaselineRequest(config.model, data.name, train_config)
    baseline = train_baseline(
        request,
        data,
        config.runs_path / "checkpoints",
        on_batch=on_batch,
        on_epoch=on_epoch,
    )
    return baseline.model, baseline.weights_path


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
) -> SearchSession:
    """Load, train if needed, and build the evaluator and budget for ``config``."""
    budget = Budget.parse(list(config.targets))
    if not budget.constraints:
        raise AutopruneError("a search needs at least one target; pass e.g. --target flops=0.5")
    profile = load_profile(config.profile)
    folder = data_dir or (Path(config.data_dir) if config.data_dir else None)
    data = load_dataset(config.dataset, data_dir=folder)
    model, weights = load_trained_model(config, data, on_batch=on_batch, on_epoch=on_epoch)
    specs = discover_layers(model, data.input_shape)
    cost_model = build_cost_model(
        profile, lut_cache_dir=lut_cache_dir or config.runs_path / "latency_lut"
    )
    cost_model = fit_latency_model(cost_model, model, data.x_val[:1], specs)
    evaluator = PolicyEvaluator(model, data, specs, cost_model, evaluator_config(config))
    return SearchSession(config, data, model, weights, evaluator, budget)
