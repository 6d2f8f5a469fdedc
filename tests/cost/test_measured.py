from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from autoprune.cost import (
    LatencyTable,
    LayerKey,
    MeasuredCostModel,
    RuntimeSettings,
    build_cost_model,
    load_profile,
)
from autoprune.policy import LayerPolicy

from ._specs import small_net

INT8 = LayerPolicy(w_bits=8, a_bits=8)


def _fake_macs(key: LayerKey, settings: RuntimeSettings) -> float:
    """A deterministic 'measurement': 0.01 ms + 1 ns per MAC, int8 twice as fast."""
    _, cout, *out_hw = key.output_shape
    k = key.kernel[0] * key.kernel[1]
    spatial = out_hw[0] * out_hw[1] if out_hw else 1
    macs = cout * (key.in_channels // key.groups) * k * spatial
    return 0.01 + macs * 1e-6 / (2 if key.precision == "int8" else 1)


def _model(cache: Path | None) -> MeasuredCostModel:
    settings = RuntimeSettings()
    table = LatencyTable(settings, cache, measure=_fake_macs, measure_fixed=lambda s: 0.01)
    return MeasuredCostModel(load_profile("cpu"), table)


def test_layer_latency_is_the_timing_minus_the_call_overhead() -> None:
    model = _model(None)
    report = model.estimate(small_net(), {})
    keys = model.keys(small_net(), {})
    for cost, spec in zip(report.layers, small_net(), strict=True):
        assert cost.bound == "measured"
        assert cost.latency_ms == pytest.approx(
            _fake_macs(keys[spec.name], RuntimeSettings()) - 0.01
        )
    assert report.overhead_ms == 0.01
    assert report.latency_ms == pytest.approx(0.01 + sum(s.macs for s in small_net()) * 1e-6)


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
    profile = replace(load_profile("cpu"), warmup=1, repeats=3)
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
