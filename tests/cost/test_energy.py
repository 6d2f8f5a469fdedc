from __future__ import annotations

import math
from dataclasses import replace

import pytest

from autoprune.core.policy import LayerPolicy
from autoprune.cost import EnergyTable, RooflineCostModel, load_profile
from autoprune.cost import _energy as energy

from ._specs import conv_spec, linear_spec


def test_horowitz_constants_are_pinned() -> None:
    assert (energy.INT8_ADD_PJ, energy.INT16_ADD_PJ, energy.INT32_ADD_PJ) == (0.03, 0.05, 0.1)
    assert (energy.INT8_MULT_PJ, energy.INT32_MULT_PJ) == (0.2, 3.1)
    assert (energy.FP16_ADD_PJ, energy.FP16_MULT_PJ) == (0.4, 1.1)
    assert (energy.FP32_ADD_PJ, energy.FP32_MULT_PJ) == (0.9, 3.7)
    assert energy.SRAM_READ_64B_PJ == ((8192, 10.0), (32768, 20.0), (1048576, 100.0))
    assert energy.DRAM_32B_ACCESS_PJ == 640.0
    assert energy.DRAM_PJ_PER_BIT == 20.0
    assert energy.ACCUMULATOR_BITS == 32


def test_multiplier_fit_passes_through_both_anchors_and_grows_like_bits_squared() -> None:
    table = EnergyTable()
    assert table.mult_pj(8, 8) == pytest.approx(0.2)
    assert table.mult_pj(32, 32) == pytest.approx(3.1)
    gamma = math.log(3.1 / 0.2) / math.log(16)
    assert table.mult_pj(4, 4) == pytest.approx(0.2 * (16 / 64) ** gamma)
    assert table.mult_pj(16, 16) / table.mult_pj(8, 8) == pytest.approx(4.0, rel=0.05)
    assert table.mult_pj(2, 8) == pytest.approx(table.mult_pj(4, 4))


def test_adder_is_linear_between_int8_and_int32() -> None:
    table = EnergyTable()
    assert table.add_pj(8) == pytest.approx(0.03)
    assert table.add_pj(32) == pytest.approx(0.1)
    assert table.add_pj(16) == pytest.approx(0.03 + 8 * 0.07 / 24)
    assert table.add_pj(16) == pytest.approx(energy.INT16_ADD_PJ, rel=0.1)


def test_mac_energy_integer_accumulates_at_32_bits_and_float_uses_fp32() -> None:
    table = EnergyTable()
    assert table.mac_pj(8, 8) == pytest.approx(0.2 + 0.1)
    assert table.mac_pj(32, 32) == pytest.approx(3.7 + 0.9)
    assert table.mac_pj(8, 32) == pytest.approx(4.6)  # float activations: float MAC
    assert table.mac_pj(2, 2) < table.mac_pj(4, 4) < table.mac_pj(8, 8)


def test_sram_energy_interpolates_the_table_and_can_be_overridden() -> None:
    assert energy.sram_read_64b_pj(8 * 1024) == pytest.approx(10.0)
    assert energy.sram_read_64b_pj(32 * 1024) == pytest.approx(20.0)
    assert energy.sram_read_64b_pj(1024 * 1024) == pytest.approx(100.0)
    assert energy.sram_read_64b_pj(16 * 1024) == pytest.approx(10.0 * math.sqrt(2))
    assert energy.sram_read_64b_pj(2 * 1024 * 1024) > 100.0
    assert EnergyTable().sram_bit_pj(32 * 1024) == pytest.approx(20.0 / 64)
    assert EnergyTable(sram_pj_per_bit=0.5).bit_pj("sram", 32 * 1024) == 0.5
    assert EnergyTable().bit_pj("dram", 32 * 1024) == 20.0


def test_one_layer_energy_matches_hand_computation_in_dram() -> None:
    profile = replace(load_profile("bitfusion"), sram_bytes=1)  # nothing fits on chip
    spec = linear_spec("fc", 10, 5)
    layer = RooflineCostModel(profile).estimate([spec], {}).layers[0]
    # fp32: weights + bias = 55 * 4 bytes; activations (10 + 5) * 4 bytes; 50 MACs.
    compute_pj = 50 * (3.7 + 0.9)
    memory_pj = (55 * 4 + 15 * 4) * 8 * 20.0
    assert layer.compute_energy_mj == pytest.approx(compute_pj * 1e-9)
    assert layer.memory_energy_mj == pytest.approx(memory_pj * 1e-9)
    assert layer.energy_mj == pytest.approx((compute_pj + memory_pj) * 1e-9)


def test_one_quantized_conv_energy_matches_hand_computation_in_sram() -> None:
    profile = load_profile("bitfusion")  # 112 KiB on chip
    spec = conv_spec("conv", 4, 8, 8)
    policy = LayerPolicy(w_bits=4, a_bits=8)
    layer = RooflineCostModel(profile).estimate([spec], {"conv": policy}).layers[0]
    macs = 8 * 4 * 9 * 64
    weight_bytes = (288 * 4 + 8 * 32 + 8 * 32) // 8  # 4-bit weights, fp32 bias and scales
    act_bytes = (4 * 64 + 8 * 64) * 8 // 8
    gamma = math.log(3.1 / 0.2) / math.log(16)
    mac_pj = 0.2 * (4 * 8 / 64) ** gamma + 0.1
    sram_64b = 20.0 * 5.0 ** (math.log(114688 / 32768) / math.log(32))
    expected = macs * mac_pj + (weight_bytes + act_bytes) * 8 * sram_64b / 64
    assert (layer.weight_bytes, layer.act_bytes, layer.macs) == (208, 768, 18432)
    assert layer.energy_mj == pytest.approx(expected * 1e-9)


@pytest.mark.parametrize("delta, level", [(-1, "dram"), (0, "sram"), (1, "sram")])
def test_weights_switch_between_sram_and_dram_at_the_exact_capacity(delta: int, level: str) -> None:
    specs = [conv_spec("conv", 8, 16, 8), linear_spec("fc", 256, 10)]
    layers = {"conv": LayerPolicy(w_bits=8, a_bits=8), "fc": LayerPolicy(w_bits=4, a_bits=8)}
    base = load_profile("bitfusion")
    stored = RooflineCostModel(base).estimate(specs, layers).stored_bytes
    report = RooflineCostModel(replace(base, sram_bytes=stored + delta)).estimate(specs, layers)
    assert report.memory_level == level
    bits = sum(c.stored_bytes + c.act_bytes for c in report.layers) * 8
    per_bit = 20.0 if level == "dram" else energy.sram_read_64b_pj(stored + delta) / 64
    memory = sum(c.memory_energy_mj for c in report.layers)
    assert memory == pytest.approx(bits * per_bit * 1e-9)


def test_compression_that_fits_on_chip_lowers_energy_sharply() -> None:
    specs = [linear_spec("fc1", 256, 128), linear_spec("fc2", 128, 10)]
    profile = replace(load_profile("bitfusion"), sram_bytes=20_000)
    model = RooflineCostModel(profile)
    int8 = model.estimate(specs, {n: LayerPolicy(w_bits=8, a_bits=8) for n in ("fc1", "fc2")})
    int2 = model.estimate(specs, {n: LayerPolicy(w_bits=2, a_bits=8) for n in ("fc1", "fc2")})
    assert (int8.memory_level, int2.memory_level) == ("dram", "sram")
    assert int2.energy_mj < int8.energy_mj / 4
