"""Apply a whole :class:`~autoprune.core.policy.Policy` to a copy of a model.

Order: structured pruning → one recovery pass (BatchNorm statistics and AMC's least-squares
reconstruction, :mod:`autoprune.compress.refit`) → fine-grained sparsity, with a
least-squares refit of the kept weights of layers at least :data:`REFIT_SPARSITY` sparse →
weight quantization → one more BatchNorm pass when weights were quantized or sparsified →
activation quantization (calibrated). The result is an ordinary ``nn.Module`` (fewer
channels for real; masks and fake-quant as parametrizations / child modules) that can be
evaluated, fine-tuned, squashed and exported.

A :class:`Compressor` does the per-model work once (tracing the dependency graph, ranking
channels, recording the original layers' outputs for reconstruction) and then compresses
many policies; :func:`compress_model` is the one-policy shortcut. Both give the same model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from autoprune.compress.act_quant import attach_activation_quant, calibrate_activations
from autoprune.compress.importance import split_batch
from autoprune.compress.pruning import ChannelPruner, PruneReport
from autoprune.compress.quantize import quantize_weights
from autoprune.compress.refit import ReconstructionTargets, recover
from autoprune.compress.sparsity import apply_sparsity
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import FLOAT_BITS, Policy

REFIT_SPARSITY = 0.7
"""Fine-grained sparsity from which a layer's kept weights are refitted (with
``reconstruct``): below it magnitude pruning barely moves the output (LeNet-300-100 at 50%
and 5 bits: 90.30% without, 90.46% with), while the solves cost most there."""


@dataclass(frozen=True)
class CompressionOptions:
    """How a policy is applied.

    Example:
        >>> CompressionOptions(importance="fpgm", round_to=8).reconstruct
        True
    """

    importance: str = "l1"
    """Channel criterion (see ``autoprune.compress.importance_names()``)."""
    round_to: int | None = None
    """Round kept channel counts to this multiple (AMC used 8)."""
    reconstruct: bool = True
    """AMC's least-squares reconstruction of layers whose inputs were pruned."""
    bn_recalibration: bool = True
    """Re-estimate BatchNorm statistics on the calibration set (when weights changed)."""
    reconstruct_rows: int = 4096
    """Sampled output positions per layer in the least-squares fit."""

    def to_dict(self) -> dict[str, Any]:
        """Plain form (recorded in policies)."""
        return asdict(self)


class Compressor:
    """Compresses copies of one model under many policies, reusing the per-model work.

    Args:
        model: The trained network (left untouched).
        example_input: One input batch used to trace the dependency graph.
        calib_batches: Training-set input batches (tensors or ``(inputs, targets)``) for
            data-driven criteria, reconstruction, BatchNorm and activation ranges; they are
            used together, as one calibration set.
        options: How to prune and recover.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        ...                     nn.Conv2d(8, 4, 3)).eval()
        >>> compressor = Compressor(net, torch.zeros(1, 1, 8, 8), [torch.randn(16, 1, 8, 8)])
        >>> from autoprune.core.specs import discover_layers
        >>> specs = discover_layers(net, (1, 8, 8))
        >>> small = compressor.compress(Policy.uniform(specs, keep_ratio=0.5))
        >>> small[0].out_channels, net[0].out_channels
        (4, 8)
    """

    def __init__(
        self,
        model: nn.Module,
        example_input: torch.Tensor,
        calib_batches: Sequence[torch.Tensor] | Sequence[Any],
        options: CompressionOptions | None = None,
    ) -> None:
        self.model = model.eval()
        self.example_input = example_input
        self.options = options or CompressionOptions()
        self.calib_batches = list(calib_batches)
        inputs = [split_batch(b)[0] for b in self.calib_batches]
        self.calib: torch.Tensor | None = torch.cat(inputs) if inputs else None
        self._calib_fast = _channels_last(self.calib)
        self._pruner: ChannelPruner | None = None
        self._targets: ReconstructionTargets | None = None

    @property
    def pruner(self) -> ChannelPruner:
        """The dependency graph and channel ranking of the model (built on first use)."""
        if self._pruner is None:
            self._pruner = ChannelPruner(
                self.model,
                self.example_input,
                importance=self.options.importance,
                calib_batches=self.calib_batches or None,
            )
        return self._pruner

    @property
    def targets(self) -> ReconstructionTargets:
        """The original layers' outputs on the calibration set (recorded on first use)."""
        if self._targets is None:
            if self.calib is None:
                raise AutopruneError("reconstruction needs calibration batches; pass a few")
            self._targets = ReconstructionTargets.record(
                self.model, self.calib, max_rows=self.options.reconstruct_rows
            )
        return self._targets

    def _fast_calib(self) -> torch.Tensor:
        """The calibration inputs in channels-last memory."""
        if self._calib_fast is None:
            raise AutopruneError("reconstruction needs calibration batches; pass a few")
        return self._calib_fast

    def compress(self, policy: Policy) -> nn.Module:
        """A compressed deep copy of the model under ``policy`` (validated by the caller)."""
        options = self.options
        compressed = copy.deepcopy(self.model).eval()
        keep = policy.keep_ratios()
        report: PruneReport | None = None
        if keep:
            report = self.pruner.prune(compressed, keep, options.round_to)
        refit = report.input_pruned if report is not None and options.reconstruct else ()
        calibrate = options.bn_recalibration and self.calib is not None
        if refit or (calibrate and keep):
            recover(
                compressed,
                self._fast_calib(),
                targets=self.targets if refit else None,
                refit=refit,
                kept_out=report.kept_out if report is not None else None,
                batchnorm=calibrate,
            )
        weights = {n: lp for n, lp in policy.layers.items() if _compresses_weights(lp)}
        self._sparsify(compressed, policy, report, calibrate)
        quantized = {n: lp for n, lp in weights.items() if lp.w_bits != FLOAT_BITS}
        quantize_weights(compressed, quantized)
        if calibrate and weights:
            recover(compressed, self._fast_calib(), batchnorm=True)
        act_layers = {n: lp for n, lp in policy.layers.items() if lp.a_bits != FLOAT_BITS}
        if act_layers:
            if self.calib is None:
                raise AutopruneError("activation quantization needs calibration batches")
            attach_activation_quant(compressed, act_layers)
            calibrate_activations(compressed, [self.calib])
        return compressed.eval()

    def _sparsify(
        self, compressed: nn.Module, policy: Policy, report: PruneReport | None, calibrate: bool
    ) -> None:
        """Magnitude masks, then (with ``reconstruct``) a least-squares refit of the kept
        weights of layers at least :data:`REFIT_SPARSITY` sparse, in one calibration pass."""
        sparse = {n: lp.sparsity for n, lp in policy.layers.items() if lp.sparsity > 0}
        apply_sparsity(compressed, sparse)
        refit = [n for n, s in sparse.items() if s >= REFIT_SPARSITY]
        if not (refit and self.options.reconstruct and self.calib is not None):
            return
        recover(
            compressed,
            self._fast_calib(),
            targets=self.targets,
            refit=refit,
            kept_out=report.kept_out if report is not None else None,
            batchnorm=calibrate,
        )


def _channels_last(x: torch.Tensor | None) -> torch.Tensor | None:
    """Images in channels-last memory: BatchNorm statistics and patches are gathered faster."""
    if x is None or x.dim() != 4:
        return x
    return x.contiguous(memory_format=torch.channels_last)


def _compresses_weights(layer: Any) -> bool:
    return layer.w_bits != FLOAT_BITS or layer.sparsity > 0


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
    return Compressor(model, example_input, calib_batches, options).compress(policy)
