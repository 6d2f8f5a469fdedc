"""Accuracy recovery without training: BatchNorm recalibration and least-squares reconstruction.

* :func:`recalibrate_bn` re-estimates BatchNorm running statistics on a few batches; after
  channels are removed the stored statistics no longer describe the activations.
* :func:`reconstruct_next_layer` is AMC's channel reconstruction: a layer whose *input*
  channels were pruned gets new weights fitted by ridge least squares, so that on calibration
  data its output matches what the original model's layer produced. (The compression
  pipeline does both in one pass: :func:`autoprune.compress.refit.recover`.)

Example:
    >>> import copy
    >>> from autoprune.compress.pruning import prune_channels_report
    >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    >>> pruned = copy.deepcopy(model)
    >>> report = prune_channels_report(pruned, torch.zeros(1, 1, 8, 8), {"0": 0.5})
    >>> batches = [torch.randn(4, 1, 8, 8) for _ in range(2)]
    >>> errors = reconstruct_next_layer(
    ...     model, pruned, batches, report.input_pruned, kept_out=report.kept_out)
    >>> errors["2"][1] <= errors["2"][0]
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, islice

import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.compress.importance import Batch, split_batch
from autoprune.compress.refit import ReconstructionTargets, recover
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.modes import eval_mode


def recalibrate_bn(model: nn.Module, batches: Iterable[Batch], num_batches: int = 20) -> nn.Module:
    """Reset and re-estimate every BatchNorm's running mean/var on up to ``num_batches`` batches.

    Statistics are a cumulative average (``momentum=None``) computed in train mode for the
    BatchNorm layers only (dropout and the rest stay in eval mode), without gradients. Every
    module's training flag and momentum is restored afterwards. Returns ``model``.

    Raises:
        AutopruneError: when ``num_batches`` < 1 or ``batches`` is empty.
    """
    if num_batches < 1:
        raise AutopruneError(f"num_batches={num_batches} must be at least 1")
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        raise AutopruneError("recalibrate_bn got no batches; pass at least one training batch")
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not norms:
        return model
    momenta = {m: m.momentum for m in norms}
    device = _device(model)
    try:
        with eval_mode(model), torch.no_grad():
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None
                norm.train()
            for batch in chain([first], islice(iterator, num_batches - 1)):
                model(split_batch(batch)[0].to(device))
    finally:
        for norm, momentum in momenta.items():
            norm.momentum = momentum
    return model


def reconstruct_next_layer(
    original: nn.Module,
    pruned: nn.Module,
    calib_batches: Iterable[Batch],
    layer_names: Sequence[str],
    *,
    kept_out: Mapping[str, Sequence[int]] | None = None,
    num_batches: int = 4,
    max_rows: int = 4096,
    ridge: float = 1e-4,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Refit the weights of ``layer_names`` in ``pruned`` by least squares (AMC).

    The inputs are taken from the pruned model and the targets are the original model's
    outputs of the same layer, on up to ``max_rows`` random positions (conv) or samples
    (linear) of the batches used together; the layers are refitted in run order in one pass
    (:func:`autoprune.compress.refit.recover`, without touching BatchNorm). The bias is kept;
    weights change only when the fit lowers the error.

    Args:
        original: The unpruned model (left untouched).
        pruned: The pruned copy, refitted in place.
        calib_batches: Batches of inputs (tensors or ``(inputs, targets)``).
        layer_names: Conv2d/Linear layers whose input channels were pruned.
        kept_out: Original output channels kept per layer (``PruneReport.kept_out``);
            needed for layers whose own outputs were pruned too.
        num_batches: Batches used.
        max_rows: Rows of the least-squares problem per layer.
        ridge: Ridge strength (toward the pruned weights) relative to the mean squared input.
        seed: Seed of the position sampling.

    Returns:
        Per layer, the relative squared error of the bias-free output ``(before, after)`` on
        the sampled rows.
    """
    batches = [split_batch(b)[0] for b in islice(calib_batches, num_batches)]
    if not batches:
        raise AutopruneError("reconstruct_next_layer got no batches; pass calibration batches")
    for name in layer_names:
        _layer(pruned, name)
    inputs = torch.cat(batches)
    targets = ReconstructionTargets.record(original, inputs, max_rows=max_rows, seed=seed)
    return recover(
        pruned,
        inputs,
        targets=targets,
        refit=layer_names,
        kept_out=kept_out,
        batchnorm=False,
        ridge=(ridge,),
    )


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _layer(model: nn.Module, name: str) -> nn.Conv2d | nn.Linear:
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    if name not in layers:
        raise unknown_name("layer", name, list(layers))
    module = layers[name]
    if parametrize.is_parametrized(module):
        raise AutopruneError(
            f"layer '{name}' carries a parametrization; reconstruct before sparsity/quantization"
        )
    return module
