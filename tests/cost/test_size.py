from __future__ import annotations

import math

import pytest

from autoprune.core.policy import LayerPolicy
from autoprune.cost import _size as size

from ._specs import conv_spec, linear_spec


def test_dense_weight_bytes_count_bits_float_bias_and_quantizer_parameters() -> None:
    spec = conv_spec("conv", 4, 8, 8)  # 288 weights, 8 biases
    assert size.weight_bytes(spec, LayerPolicy()) == 296 * 4
    assert size.weight_bytes(spec, LayerPolicy(w_bits=4)) == (288 * 4 + 8 * 32 + 8 * 32) // 8
    kmeans = LayerPolicy(w_bits=4, quantizer="kmeans")
    assert size.weight_bytes(spec, kmeans) == (288 * 4 + 8 * 32 + 16 * 32) // 8
    no_bias = conv_spec("conv", 4, 8, 8, bias=False)
    assert size.weight_bytes(no_bias, LayerPolicy()) == 288 * 4


def test_four_bit_weights_are_about_an_eighth_of_fp32() -> None:
    spec = linear_spec("fc", 256, 256)
    fp32 = size.weight_bytes(spec, LayerPolicy())
    int4 = size.weight_bytes(spec, LayerPolicy(w_bits=4))
    assert fp32 == (65536 + 256) * 4
    assert 1 / 8 <= int4 / fp32 < 1 / 8 * 1.1


def test_coded_bytes_equal_dense_bytes_without_sparsity() -> None:
    spec = conv_spec("conv", 4, 8, 8)
    policy = LayerPolicy(w_bits=8)
    assert size.coded_bytes(spec, policy) == size.weight_bytes(spec, policy)


def test_coded_bytes_follow_deep_compression_relative_indexing() -> None:
    spec = linear_spec("fc", 100, 100)
    policy = LayerPolicy(w_bits=5, sparsity=0.9)
    miss = 0.9**32  # 5-bit gaps: a filler zero every 32 positions without a nonzero
    entries = 10000 * 0.1 * (1 + miss / (1 - miss))
    bits = entries * (5 + 5) + 100 * 32 + 100 * 32
    assert size.coded_bytes(spec, policy) == math.ceil(bits / 8)
    sizes = size.layer_sizes(spec, policy)
    assert sizes.stored_bytes == sizes.coded_bytes < sizes.weight_bytes


def test_conv_layers_use_8_bit_indices_and_fc_layers_5_bit() -> None:
    assert size.index_bits(conv_spec("c", 4, 8, 8)) == 8
    assert size.index_bits(conv_spec("d", 8, 8, 8, groups=8)) == 8
    assert size.index_bits(linear_spec("fc", 4, 4)) == 5


def test_light_sparsity_is_stored_dense_when_coding_costs_more() -> None:
    spec = conv_spec("conv", 16, 16, 8)
    sizes = size.layer_sizes(spec, LayerPolicy(w_bits=4, sparsity=0.1))
    assert sizes.coded_bytes > sizes.weight_bytes
    assert sizes.stored_bytes == sizes.weight_bytes


def test_expected_fillers_vanish_for_dense_and_grow_with_sparsity() -> None:
    assert size.expected_fillers(1.0, 5) == 0.0
    assert size.expected_fillers(0.5, 5) == pytest.approx(0.5**32 / (1 - 0.5**32))
    assert size.expected_fillers(0.01, 5) > size.expected_fillers(0.01, 8)


def test_activation_bytes_count_input_and_output_at_a_bits() -> None:
    spec = conv_spec("conv", 4, 8, 8, stride=2)  # out 4x4
    assert size.act_elements(spec) == (4 * 64, 8 * 16)
    assert size.act_bytes(spec, LayerPolicy(a_bits=8)) == 256 + 128
    assert size.act_bytes(spec, LayerPolicy()) == (256 + 128) * 4
    assert size.act_bytes(linear_spec("fc", 10, 5), LayerPolicy(a_bits=4)) == math.ceil(15 / 2)


def test_pruned_channels_shrink_every_byte_count() -> None:
    policy = LayerPolicy(w_bits=8, a_bits=8)
    full = size.layer_sizes(conv_spec("conv", 16, 32, 8), policy)
    pruned = size.layer_sizes(conv_spec("conv", 8, 16, 8), policy)
    assert pruned.weight_bytes < full.weight_bytes / 3
    assert pruned.act_bytes == full.act_bytes // 2
