from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from autoprune.core.policy import LayerPolicy
from autoprune.cost import MeasurementSettings, load_profile
from autoprune.latency import (
    KernelTiming,
    LatencyTable,
    LayerKey,
    LayerSumLine,
    MeasuredCostModel,
    build_cost_model,
    chained_times,
)

from ._specs import small_net

INT8 = LayerPolicy(w_bits=8, a_bits=8)


def _fake_macs(key: LayerKey) -> float:
    """A deterministic 'measurement': 0.01 ms + 1 ns per MAC, int8 twice as fast."""
    _, cout, *out_hw = key.output_shape
    k = key.kernel[0] * key.kernel[1]
    spatial = out_hw[0] * out_hw[1] if out_hw else 1
    macs = cout * (key.in_channels // key.groups) * k * spatial
    return 0.01 + macs * 1e-6 / (2 if key.precision == "int8" else 1)


def _fake_batch(keys: list[LayerKey], settings: MeasurementSettings) -> list[KernelTiming]:
    return [KernelTiming(_fake_macs(k)) for k in keys]


def _model(cache: Path | None) -> MeasuredCostModel:
    settings = MeasurementSettings()
    table = LatencyTable(settings, cache, measure=_fake_batch, measure_fixed=lambda s, b: 0.01)
    return MeasuredCostModel(load_profile("cpu"), table)


def test_layer_latency_is_its_timing_and_the_call_overhead_is_added_once() -> None:
    model = _model(None)
    report = model.estimate(small_net(), {})
    keys = model.keys(small_net(), {})
    for cost, spec in zip(report.layers, small_net(), strict=True):
        assert cost.bound == "measured"
        assert cost.latency_ms == pytest.approx(_fake_macs(keys[spec.name]))
    assert report.overhead_ms == 0.01
    assert report.latency_ms == pytest.approx(0.04 + sum(s.macs for s in small_net()) * 1e-6)


def test_a_layer_sum_line_scales_the_layers_and_replaces_the_overhead() -> None:
    model = _model(None)
    plain = model.estimate(small_net(), {})
    model.line = LayerSumLine(scale=0.5, offset_ms=0.2, points=3)
    calibrated = model.estimate(small_net(), {})
    for before, after in zip(plain.layers, calibrated.layers, strict=True):
        assert after.latency_ms == pytest.approx(0.5 * before.latency_ms)
    assert calibrated.overhead_ms == 0.2
    assert calibrated.latency_ms == pytest.approx(0.5 * (plain.latency_ms - 0.01) + 0.2)
    assert model.summed_ms(small_net(), {}) == pytest.approx(plain.latency_ms - 0.01)


def test_layout_conversions_are_charged_only_where_the_layout_changes() -> None:
    blocked = KernelTiming(1.0, reorder_in_ms=0.1, reorder_out_ms=0.2)
    plain = KernelTiming(1.0)
    # the first layer converts its input, the last its output; between blocked layers nothing
    assert chained_times([blocked, blocked, blocked]) == pytest.approx([1.1, 1.0, 1.2])
    # a plain layer in the middle makes both neighbours convert
    assert chained_times([blocked, plain, blocked]) == pytest.approx([1.3, 1.0, 1.3])
    assert chained_times([plain, plain]) == [1.0, 1.0]
    assert chained_times([]) == []


def test_pruned_specs_and_int8_lower_the_measured_latency() -> None:
    model = _model(None)
    full = model.estimate(small_net(16), {})
    pruned = model.estimate(small_net(8), {})
    int8 = model.estimate(small_net(16), {name: INT8 for name in ("conv1", "conv2", "fc")})
    assert pruned.macs < full.macs and pruned.latency_ms < full.latency_ms
    assert int8.latency_ms < full.latency_ms
    assert {k.precision for k in model.keys(small_net(), {"conv1": INT8}).values()} == {
        "int8",
        "fp32",
    }


def test_a_second_model_over_the_same_cache_measures_nothing(tmp_path: Path) -> None:
    _model(tmp_path).estimate(small_net(), {"fc": INT8})
    again = _model(tmp_path)
    again.estimate(small_net(), {"fc": INT8})
    assert again.table.measurements == 0


def test_cpu_profile_measures_real_layers_end_to_end(tmp_path: Path) -> None:
    cpu = load_profile("cpu")
    profile = replace(cpu, measurement=replace(cpu.measurement, warmup=1, repeats=3))
    specs = small_net(4)
    layers = {"conv2": INT8}
    model = build_cost_model(profile, lut_cache_dir=tmp_path)
    report = model.estimate(specs, layers)
    assert report.latency_ms > 0 and report.energy_mj > 0
    assert len(list(tmp_path.glob("latency-*.json"))) == 1
    again = build_cost_model(profile, lut_cache_dir=tmp_path)
    assert isinstance(again, MeasuredCostModel)
    assert again.estimate(specs, layers).latency_ms == pytest.approx(report.latency_ms)
    assert again.table.measurements == 0
