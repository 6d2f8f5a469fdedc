from __future__ import annotations

import json
from dataclasses import replace

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy
from autoprune.cost import CostReport, RooflineCostModel, load_profile
from autoprune.cost._roofline import brick_width, throughput_factor
from autoprune.latency import MeasuredCostModel, build_cost_model

from ._specs import conv_spec, linear_spec, small_net

BIG_CONV = conv_spec("conv", 64, 64, 32)  # 37.7 M MACs, 37 KB of int8 weights


def _latency(profile_name: str, w_bits: int, a_bits: int) -> float:
    model = RooflineCostModel(load_profile(profile_name))
    policy = LayerPolicy(w_bits=w_bits, a_bits=a_bits)
    return model.estimate([BIG_CONV], {"conv": policy}).layers[0].latency_ms


def test_bits_round_up_to_brick_multiples() -> None:
    assert [brick_width(b, 2) for b in (1, 2, 3, 4, 5, 8, 16, 32)] == [2, 2, 4, 4, 8, 8, 16, 32]
    bitfusion = load_profile("bitfusion")
    assert throughput_factor(bitfusion, 8, 8) == 1.0
    assert throughput_factor(bitfusion, 2, 8) == throughput_factor(bitfusion, 8, 2) == 4.0
    assert throughput_factor(bitfusion, 2, 2) == 16.0
    assert throughput_factor(bitfusion, 3, 5) == 2.0
    assert throughput_factor(bitfusion, 32, 32) == 1 / 16


def test_compute_bound_and_memory_bound_layers() -> None:
    model = RooflineCostModel(load_profile("bitfusion"))
    conv = model.estimate([BIG_CONV], {"conv": LayerPolicy(w_bits=8, a_bits=8)}).layers[0]
    assert conv.bound == "compute"
    assert conv.latency_ms == pytest.approx(BIG_CONV.macs / 2.56e11 * 1e3)
    fc = linear_spec("fc", 1024, 1024)  # 4 MB of fp32 weights: DRAM at 16 GB/s
    layer = model.estimate([fc], {}).layers[0]
    assert layer.bound == "memory"
    moved = layer.weight_bytes + layer.act_bytes
    assert layer.latency_ms == pytest.approx(moved / 16e9 * 1e3)


def test_fewer_bits_are_faster_on_bitfusion() -> None:
    l8, l4, l2 = (_latency("bitfusion", b, b) for b in (8, 4, 2))
    assert l8 == pytest.approx(4 * l4) and l4 == pytest.approx(4 * l2)
    assert _latency("bitfusion", 4, 8) == pytest.approx(l8 / 2)


def test_mobile_cpu_gains_from_int8_but_not_below_8_bits() -> None:
    l32, l8, l4, l2 = (_latency("mobile-cpu", b, b) for b in (32, 8, 4, 2))
    assert l32 == pytest.approx(3 * l8)
    assert l8 == l4 == l2


@pytest.mark.parametrize("name", ["bitfusion", "mobile-cpu"])
def test_pruned_channels_lower_macs_latency_energy_and_size(name: str) -> None:
    model = build_cost_model(load_profile(name))
    layers = {"conv1": LayerPolicy(w_bits=8, a_bits=8), "conv2": LayerPolicy(w_bits=8, a_bits=8)}
    full = model.estimate(small_net(16), layers)
    pruned = model.estimate(small_net(8), layers)
    assert pruned.macs < full.macs
    assert pruned.latency_ms < full.latency_ms
    assert pruned.energy_mj < full.energy_mj
    assert pruned.metric("size") < full.metric("size")


def test_sparsity_shrinks_size_and_memory_energy_but_not_macs() -> None:
    model = RooflineCostModel(load_profile("mobile-cpu"))
    specs = [linear_spec("fc", 512, 256)]
    dense = model.estimate(specs, {"fc": LayerPolicy(w_bits=8, a_bits=8)})
    sparse = model.estimate(specs, {"fc": LayerPolicy(w_bits=8, a_bits=8, sparsity=0.9)})
    assert sparse.macs == dense.macs
    assert sparse.metric("size") < dense.metric("size") / 3
    assert sparse.coded_bytes == sparse.stored_bytes < sparse.weight_bytes == dense.weight_bytes
    assert sparse.layers[0].memory_energy_mj < dense.layers[0].memory_energy_mj


def test_report_totals_metrics_and_rows() -> None:
    profile = load_profile("mobile-cpu")
    report = RooflineCostModel(profile).estimate(small_net(), {"fc": LayerPolicy(w_bits=4)})
    assert isinstance(report, CostReport)
    assert report.latency_ms == pytest.approx(
        sum(c.latency_ms for c in report.layers) + profile.overhead_ms
    )
    assert report.metric("flops") == report.metric("macs") == sum(s.macs for s in small_net())
    assert report.metric("params") == sum(s.params for s in small_net())
    assert report.metric("size") == report.stored_bytes
    assert report.metric("latency") == report.latency_ms
    assert report.metric("energy") == report.energy_mj
    assert report.energy_mj == pytest.approx(
        sum(c.compute_energy_mj + c.memory_energy_mj for c in report.layers)
    )
    with pytest.raises(AutopruneError, match="unknown cost metric 'speed'; choose one of"):
        report.metric("speed")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["totals"]["macs"] == report.macs and len(data["layers"]) == 3
    assert data["layers"][2]["weight_bits"] == 4
    rows = report.to_rows()
    assert len(rows) == 4 and rows[-1][0] == "total"
    assert all(len(row) == len(CostReport.columns) for row in rows)


def test_layers_missing_from_the_policy_are_float_and_unknown_ones_are_refused() -> None:
    model = RooflineCostModel(load_profile("bitfusion"))
    report = model.estimate(small_net(), {})
    assert {(c.weight_bits, c.act_bits) for c in report.layers} == {(32, 32)}
    with pytest.raises(AutopruneError, match="layers the specs do not have: conv9"):
        model.estimate(small_net(), {"conv9": LayerPolicy()})
    with pytest.raises(AutopruneError, match="w_bits 9"):
        model.estimate(small_net(), {"fc": LayerPolicy(w_bits=9)})


def test_batch_size_reuses_weights_across_samples() -> None:
    profile = load_profile("bitfusion")
    fc = [linear_spec("fc", 1024, 1024)]
    one = RooflineCostModel(profile).estimate(fc, {}).latency_ms
    many = RooflineCostModel(replace(profile, batch_size=64)).estimate(fc, {}).latency_ms
    assert many < 64 * one / 2


def test_build_cost_model_picks_the_model_for_the_profile_kind() -> None:
    assert isinstance(build_cost_model(load_profile("bitfusion")), RooflineCostModel)
    assert isinstance(build_cost_model(load_profile("cpu")), MeasuredCostModel)
