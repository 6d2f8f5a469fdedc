"""ADMM training of a trained CNN towards one model-size budget (Yang et al., CVPR 2020).

The problem ``min loss(W) s.t. Σ_l bits_l × nonzeros_l(W_l) ≤ budget`` is split with a
projected copy V and a scaled dual Y:

1. **W-step** — one epoch of SGD on ``loss(W) + ρ/2 ‖W − V + Y‖²``;
2. **V-step** — ``V = Π(W + Y)``, the sparse k-means-coded tensors nearest to ``W + Y``
   within the budget (:func:`autoprune.admm.project_joint`: the sparsity knapsack, then the
   bit-width knapsack, from several starts);
3. **dual step** — ``Y ← Y + W − V``, once per epoch; then ρ grows by ``rho_growth`` and Y is
   rescaled by ``ρ_old / ρ_new`` so that the unscaled multiplier ``ρY`` is unchanged.

After the last epoch W is hard-projected onto V's masks and bit-widths (masks as
:class:`~autoprune.compress.sparsity.SparsityMask`, a k-means codebook refitted on W's kept
weights), then fine-tuned with masks and assignments frozen: only the centroids, biases and
BatchNorm learn, by :func:`autoprune.compress.retrain.retrain`: each centroid follows the
mean of its members' gradients (Deep Compression sums them, which diverges at 1-2 bits where
one centroid stands for most of a layer), the best epoch is kept and a diverging run is
retried at a lower rate. The result always satisfies the budget.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from autoprune.admm._config import AdmmConfig, AdmmEpoch, AdmmResult, check_budget, coded_cost
from autoprune.admm._joint import Projection, project_joint
from autoprune.compress import quantize_weights
from autoprune.compress.retrain import normalise_centroid_steps, retrain
from autoprune.compress.sparsity import SparsityMask
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import split_accuracy
from autoprune.data import DataSplits
from autoprune.deep_compression import CodedModel


def _layer_names(model: nn.Module, data: DataSplits, config: AdmmConfig) -> tuple[list, list]:
    specs = discover_layers(model, data.input_shape)
    names = [s.name for s in specs]
    chosen = names if config.layers is None else list(config.layers)
    for name in chosen:
        if name not in names:
            raise unknown_name("layer", name, names)
        if parametrize.is_parametrized(model.get_submodule(name)):
            raise AutopruneError(
                f"layer '{name}' already carries a mask or quantizer; pass the trained "
                "uncompressed model (squash it first)"
            )
    return specs, chosen


def _weight_parameter(model: nn.Module, name: str) -> nn.Parameter:
    weight = model.get_submodule(name).weight
    # _layer_names allows only unparametrized layers, whose weight is a plain Parameter.
    assert isinstance(weight, nn.Parameter)
    return weight


@contextmanager
def _swapped(params: Mapping[str, nn.Parameter], values: Mapping[str, torch.Tensor]) -> Iterator:
    """Temporarily replace each parameter's data with ``values``."""
    saved = {name: p.detach().clone() for name, p in params.items()}
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(values[name])
    try:
        yield
    finally:
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved[name])


def _w_step(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, Any]],
    optimizer: torch.optim.Optimizer,
    params: Mapping[str, nn.Parameter],
    anchors: Mapping[str, torch.Tensor],
    rho: float,
) -> tuple[float, float]:
    """One epoch of SGD on loss + ρ/2 Σ‖W − anchor‖² (anchor = V − Y); mean loss and penalty."""
    model.train()
    loss_sum = penalty_sum = 0.0
    batches = 0
    for xb, yb in loader:
        task = F.cross_entropy(model(xb), yb)
        penalty = sum(((params[n] - anchors[n]) ** 2).sum() for n in params) * (rho / 2)
        assert isinstance(penalty, torch.Tensor)  # params is never empty
        optimizer.zero_grad(set_to_none=True)
        (task + penalty).backward()
        optimizer.step()
        loss_sum += float(task.detach())
        penalty_sum += float(penalty.detach())
        batches += 1
    model.eval()
    return loss_sum / max(batches, 1), penalty_sum / max(batches, 1)


def _residual(params: Mapping[str, nn.Parameter], values: Mapping[str, torch.Tensor]) -> float:
    diff = sum(float(((params[n].detach() - values[n]) ** 2).sum()) for n in params)
    norm = sum(float((params[n].detach() ** 2).sum()) for n in params)
    return math.sqrt(diff / norm) if norm > 0 else 0.0


def _project(
    params: Mapping[str, nn.Parameter],
    duals: Mapping[str, torch.Tensor],
    budget_bits: float,
    config: AdmmConfig,
    bits: Mapping[str, int] | None,
) -> Projection:
    targets = {n: params[n].detach() + duals[n] for n in params}
    return project_joint(
        targets,
        budget_bits,
        bits=bits,
        options=config.bit_options,
        rounds=config.rounds,
        max_iter=config.kmeans_iters,
        overhead=config.overhead,
    )


def _run_admm(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    data: DataSplits,
    budget_bits: float,
    config: AdmmConfig,
    on_epoch: Callable[[AdmmEpoch], None] | None,
) -> tuple[Projection, list[AdmmEpoch]]:
    """The ADMM iterations; the last projection V and the per-epoch history."""
    duals = {n: torch.zeros_like(p.detach()) for n, p in params.items()}
    projection = _project(params, duals, budget_bits, config, None)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    history: list[AdmmEpoch] = []
    rho = config.rho
    for epoch in range(config.epochs):
        loader = data.loader("train", config.batch_size, shuffle=True, seed=config.seed + epoch)
        anchors = {n: projection.values[n] - duals[n] for n in params}
        loss, penalty = _w_step(model, loader, optimizer, params, anchors, rho)
        projection = _project(params, duals, budget_bits, config, projection.bits)
        for n, p in params.items():
            duals[n] += p.detach() - projection.values[n]
        with _swapped(params, projection.values):
            projected = split_accuracy(model, data)
        record = AdmmEpoch(
            epoch=epoch + 1,
            rho=rho,
            loss=loss,
            penalty=penalty,
            residual=_residual(params, projection.values),
            val_accuracy=split_accuracy(model, data),
            projected_accuracy=projected,
            yang_bits=projection.yang_bits,
            cost_bits=projection.cost_bits,
            bits=dict(projection.bits),
            density={n: float(m.float().mean()) for n, m in projection.masks.items()},
        )
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        next_rho = rho * config.rho_growth
        for n in duals:
            duals[n] *= rho / next_rho
        rho = next_rho
    return projection, history


def average_centroid_gradients(model: nn.Module) -> None:
    """Make every k-means centroid's gradient the mean, not the sum, of its members' gradients.

    Deep Compression sums them, so a centroid's step grows with its cluster: at 1-2 bits a
    centroid can stand for tens of thousands of weights and a learning rate that suits a
    single weight diverges. :func:`autoprune.compress.retrain.retrain` does this for the
    duration of a retraining; this keeps the hooks until the model is squashed.
    """
    normalise_centroid_steps(model)


def _hard_project(model: nn.Module, projection: Projection) -> None:
    """Mask W with V's masks and code its kept weights with k-means at V's bit-widths."""
    for name, mask in projection.masks.items():
        if not bool(mask.any()):
            raise AutopruneError(
                f"the size budget leaves layer '{name}' without any weight; raise the budget "
                "or exclude the layer (AdmmConfig.layers)"
            )
        module = model.get_submodule(name)
        parametrize.register_parametrization(module, "weight", SparsityMask(mask))
    layers = {n: LayerPolicy(w_bits=b, quantizer="kmeans") for n, b in projection.bits.items()}
    quantize_weights(model, layers)


def _policy(specs: list, coded: CodedModel, budget_bits: float) -> Policy:
    layers = {
        name: LayerPolicy(
            w_bits=q.bits, sparsity=(q.size - q.nonzeros) / q.size, quantizer="kmeans"
        )
        for name, q in coded.weights.items()
    }
    policy = Policy.for_specs(specs, layers)
    policy.budget = {"size": f"{budget_bits / 8:.12g}B"}
    policy.meta = {"method": "admm", "budget_bits": budget_bits, "yang_bits": coded.yang_bits}
    return policy


def admm_compress(
    model: nn.Module,
    data: DataSplits,
    size_budget_bytes: float,
    config: AdmmConfig | None = None,
    *,
    on_epoch: Callable[[AdmmEpoch], None] | None = None,
) -> AdmmResult:
    """Sparsify and k-means-quantize a copy of ``model`` so that Σ bits × nonzeros fits.

    Args:
        model: The trained, uncompressed network (left untouched).
        data: Dataset splits; ADMM trains on ``train`` and reports on ``val``.
        size_budget_bytes: Yang et al.'s size budget, Σ bits × nonzeros / 8 (plus the
            overhead of ``config``), in bytes; it must lie in (0, 4 bytes × weights of the
            budgeted layers].
        config: ADMM settings (defaults: :class:`AdmmConfig`).
        on_epoch: Called after every ADMM epoch.

    Returns:
        The policy, the compressed model with its coded weights, and the history.

    Raises:
        AutopruneError: For a budget outside the valid range, an unknown or already
            compressed layer, or a budget that leaves a layer without weights.

    Example:
        >>> result = admm_compress(model, data, 4000, AdmmConfig(epochs=2))  # doctest: +SKIP
        >>> result.yang_bits <= 8 * 4000  # doctest: +SKIP
        True
    """
    config = config or AdmmConfig()
    config.check()
    specs, names = _layer_names(model, data, config)
    by_name = {s.name: s for s in specs}
    budget_bits = check_budget(size_budget_bytes, sum(by_name[n].weight_count for n in names))
    work = copy.deepcopy(model).eval()
    params = {n: _weight_parameter(work, n) for n in names}
    torch.manual_seed(config.seed)
    projection, history = _run_admm(work, params, data, budget_bits, config, on_epoch)
    _hard_project(work, projection)
    if config.finetune_epochs:  # centroids by their members' mean gradient, best epoch kept
        retrain(work, data, config.finetune_epochs, lr=config.finetune_lr, seed=config.seed)
    work.eval()
    val_accuracy = split_accuracy(work, data)
    coded = CodedModel.freeze(work, names)
    cost = coded_cost(coded, config.overhead)
    assert coded.yang_bits <= cost <= budget_bits, "hard projection left the budget"
    policy = _policy(specs, coded, budget_bits)
    policy.metrics = {"accuracy": val_accuracy, "yang_bytes": coded.yang_bits / 8}
    return AdmmResult(policy, coded, history, budget_bits, cost, val_accuracy)
