"""Apply a whole :class:`~autoprune.policy.Policy` to a copy of a model.

Order: structured pruning → optional least-squares reconstruction → fine-grained sparsity
and weight quantization → BatchNorm recalibration → activation quantization (calibrated).
The result is an ordinary ``nn.Module`` (fewer channels for real; masks and fake-quant as
parametrizations / child modules) that can be evaluated, fine-tuned, squashed and exported.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from autoprune.compress.act_quant import attach_activation_quant, calibrate_activations
from autoprune.compress.pruning import prune_channels_report
from autoprune.compress.quantize import apply_weight_compression
from autoprune.compress.recovery import recalibrate_bn, reconstruct_next_layer
from autoprune.policy import FLOAT_BITS, Policy


@dataclass(frozen=True)
class CompressionOptions:
    """How a policy is applied.

    Example:
        >>> CompressionOptions(importance="fpgm", round_to=8).reconstruct
        False
    """

    importance: str = "l1"
    """Channel criterion (see ``autoprune.compress.importance_names()``)."""
    round_to: int | None = None
    """Round kept channel counts to this multiple (AMC used 8)."""
    reconstruct: bool = False
    """AMC's least-squares reconstruction of layers whose inputs were pruned."""
    bn_recalibration: bool = True
    """Re-estimate BatchNorm statistics on the calibration batches (when weights changed)."""


def compress_model(
    model: nn.Module,
    policy: Policy,
    example_input: torch.Tensor,
    calib_batches: Sequence[torch.Tensor],
    options: CompressionOptions | None = None,
) -> nn.Module:
    """A compressed deep copy of ``model`` (the original is untouched).

    Args:
        model: The trained network.
        policy: Per-layer keep ratios, bits and sparsity (validated by the caller).
        example_input: One input batch used to trace the dependency graph.
        calib_batches: Training-set input batches for criteria, reconstruction, BN and
            activation ranges.
        options: How to prune and recover.
    """
    options = options or CompressionOptions()
    compressed = copy.deepcopy(model).eval()
    keep = policy.keep_ratios()
    if keep:
        report = prune_channels_report(
            compressed,
            example_input,
            keep,
            importance=options.importance,
            round_to=options.round_to,
            calib_batches=calib_batches,
        )
        if options.reconstruct and report.input_pruned:
            reconstruct_next_layer(
                model, compressed, calib_batches, report.input_pruned, kept_out=report.kept_out
            )
    apply_weight_compression(compressed, policy.layers)
    weights_changed = bool(keep) or any(
        lp.w_bits != FLOAT_BITS or lp.sparsity > 0 for lp in policy.layers.values()
    )
    if options.bn_recalibration and weights_changed and calib_batches:
        recalibrate_bn(compressed, calib_batches, num_batches=len(calib_batches))
    if any(lp.a_bits != FLOAT_BITS for lp in policy.layers.values()):
        act_layers = {n: lp for n, lp in policy.layers.items() if lp.a_bits != FLOAT_BITS}
        attach_activation_quant(compressed, act_layers)
        calibrate_activations(compressed, calib_batches)
    return compressed.eval()
