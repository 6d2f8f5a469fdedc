"""Bytes of one (already pruned) layer at a policy's bit-widths: dense, coded and activations.

This is the *analytic* size, used where the trained weights are unknown (``autoprune cost``
on specs alone). With weights, ``size`` is the predicted ``.apz`` file
(:mod:`autoprune.cost._apz_size`) and these numbers only price memory energy and latency.

Counting rules:
    * Weights at ``w_bits``; biases stay float (32 bits).
    * Quantizer parameters are counted as in :mod:`autoprune.core.qtensor`: ``linear`` keeps one
      float32 scale per output channel, ``kmeans`` a float32 codebook of ``2**w_bits``
      centroids. Float weights have none.
    * Coded form (only when ``sparsity > 0``), after Deep Compression: each nonzero stores its
      value and a relative index of 8 bits (conv) or 5 bits (linear); a gap longer than the
      index can express costs a filler zero. For nonzeros spread uniformly with density
      ``d`` the expected fillers per nonzero are ``q**M / (1 - q**M)``, ``q = 1 - d``,
      ``M = 2**index_bits``. Huffman coding is not counted (an estimate, not a file size).
    * Activations: the layer's input and output for one sample at ``a_bits``.
    * Yang et al.'s count (the ``bits`` metric): ``w_bits`` x nonzero weights, in bits, the
      nonzeros being what magnitude pruning leaves (``n - round(sparsity * n)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoprune.coding import yang_bits
from autoprune.core.policy import FLOAT_BITS, LayerPolicy
from autoprune.core.specs import LayerSpec

CONV_INDEX_BITS = 8
"""Relative-index width for conv layers (Deep Compression)."""
FC_INDEX_BITS = 5
"""Relative-index width for fully connected layers (Deep Compression)."""
PARAM_BITS = 32
"""Width of biases, scales and codebook entries."""


@dataclass(frozen=True)
class LayerSizes:
    """Bytes of one layer; ``stored_bytes`` is the smaller of the dense and coded forms."""

    weight_bytes: int
    coded_bytes: int
    act_bytes: int
    yang_bits: int = 0

    @property
    def stored_bytes(self) -> int:
        """Bytes a deployment keeps: the coded form when it is smaller than the dense one."""
        return min(self.weight_bytes, self.coded_bytes)


def _bytes(bits: float) -> int:
    return math.ceil(bits / 8)


def bias_count(spec: LayerSpec) -> int:
    """Parameters of ``spec`` that are not weights (the bias)."""
    return max(spec.params - spec.weight_count, 0)


def quantizer_bits(spec: LayerSpec, policy: LayerPolicy) -> int:
    """Bits of the quantizer's own parameters (scales or codebook)."""
    if policy.w_bits >= FLOAT_BITS:
        return 0
    if policy.quantizer == "kmeans":
        return (2**policy.w_bits) * PARAM_BITS
    return spec.out_channels * PARAM_BITS


def index_bits(spec: LayerSpec) -> int:
    """Relative-index width of the coded form for this kind of layer."""
    return FC_INDEX_BITS if spec.kind == "linear" else CONV_INDEX_BITS


def expected_fillers(density: float, bits: int) -> float:
    """Expected filler zeros per nonzero when gaps are coded in ``bits`` bits."""
    if density >= 1.0:
        return 0.0
    span = 2**bits
    miss = (1.0 - density) ** span
    return miss / (1.0 - miss)


def weight_bytes(spec: LayerSpec, policy: LayerPolicy) -> int:
    """Dense bytes: weights at ``w_bits``, float bias, quantizer parameters."""
    bits = spec.weight_count * policy.w_bits + bias_count(spec) * PARAM_BITS
    return _bytes(bits + quantizer_bits(spec, policy))


def coded_bytes(spec: LayerSpec, policy: LayerPolicy) -> int:
    """Estimated bytes of the sparse coded form; the dense bytes when ``sparsity == 0``."""
    if policy.sparsity <= 0.0:
        return weight_bytes(spec, policy)
    density = 1.0 - policy.sparsity
    idx = index_bits(spec)
    entries = spec.weight_count * density * (1.0 + expected_fillers(density, idx))
    bits = entries * (policy.w_bits + idx) + bias_count(spec) * PARAM_BITS
    return _bytes(bits + quantizer_bits(spec, policy))


def nonzero_weights(spec: LayerSpec, policy: LayerPolicy) -> int:
    """Weights left after fine-grained sparsity: ``round(sparsity * n)`` of ``n`` are zeroed."""
    count = spec.weight_count
    return count - round(policy.sparsity * count) if policy.sparsity > 0 else count


def layer_yang_bits(spec: LayerSpec, policy: LayerPolicy) -> int:
    """Yang et al.'s size of the layer: ``w_bits`` x nonzero weights, in bits."""
    return yang_bits(policy.w_bits, nonzero_weights(spec, policy))


def act_elements(spec: LayerSpec) -> tuple[int, int]:
    """Input and output activation elements of one sample."""
    in_elems = spec.in_channels * spec.in_hw[0] * spec.in_hw[1]
    out_elems = spec.out_channels * spec.out_hw[0] * spec.out_hw[1]
    return in_elems, out_elems


def act_bytes(spec: LayerSpec, policy: LayerPolicy) -> int:
    """Input plus output activation bytes of one sample at ``a_bits``."""
    return _bytes(sum(act_elements(spec)) * policy.a_bits)


def layer_sizes(spec: LayerSpec, policy: LayerPolicy) -> LayerSizes:
    """All byte counts of one layer."""
    return LayerSizes(
        weight_bytes=weight_bytes(spec, policy),
        coded_bytes=coded_bytes(spec, policy),
        act_bytes=act_bytes(spec, policy),
        yang_bits=layer_yang_bits(spec, policy),
    )
