from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autoprune.core.errors import AutopruneError
from autoprune.cost import HardwareProfile, MeasurementSettings, load_profile, profile_names

USER_PROFILE = {
    "name": "my-npu",
    "kind": "roofline",
    "source": "assumed for a test",
    "description": "a made-up accelerator",
    "sram_bytes": 65536,
    "peak_macs_per_s": "1e9",  # PyYAML reads 1e9 as a string; it must still parse
    "bit_scaling": "brick",
    "dram_bandwidth_gbps": 2,
    "sram_bandwidth_gbps": 20.5,
    "energy": {"dram_pj_per_bit": 10, "sram_pj_per_bit": 0.25},
}


def _write(tmp_path: Path, data: object, name: str = "npu.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_packaged_profiles_are_listed_and_load() -> None:
    assert profile_names() == ["bitfusion", "cpu", "mobile-cpu"]
    for name in profile_names():
        profile = load_profile(name)
        assert profile.name == name
        assert profile.source and profile.description


def test_packaged_profiles_label_measured_and_modelled_numbers() -> None:
    cpu, bitfusion, mobile = (load_profile(n) for n in ("cpu", "bitfusion", "mobile-cpu"))
    assert cpu.kind == "measured" and "MEASURED" in cpu.source
    timing = cpu.measurement
    assert (timing.runtime, timing.threads, cpu.batch_size) == ("onnxruntime", 1, 1)
    for profile in (bitfusion, mobile):
        assert profile.kind == "roofline" and "MODELLED" in profile.source
        assert profile.peak_macs_per_s and profile.dram_bandwidth_gbps
    assert (bitfusion.bit_scaling, bitfusion.brick_bits) == ("brick", 2)
    assert bitfusion.peak_macs_per_s == pytest.approx(2.56e11)
    assert (mobile.bit_scaling, mobile.float_slowdown) == ("int8", 3.0)


def test_user_yaml_path_loads_with_energy_overrides(tmp_path: Path) -> None:
    profile = load_profile(str(_write(tmp_path, USER_PROFILE)))
    assert isinstance(profile, HardwareProfile)
    assert profile.peak_macs_per_s == 1e9
    assert profile.sram_bytes == 65536 and isinstance(profile.sram_bytes, int)
    assert profile.energy.dram_pj_per_bit == 10.0
    assert profile.energy.bit_pj("sram", profile.sram_bytes) == 0.25
    assert profile.energy.int8_mult_pj == 0.2  # not overridden
    assert load_profile(_write(tmp_path, USER_PROFILE, "other.yml")).name == "my-npu"


@pytest.mark.parametrize("missing", ["source", "kind", "sram_bytes", "peak_macs_per_s"])
def test_missing_field_is_named(tmp_path: Path, missing: str) -> None:
    data = {k: v for k, v in USER_PROFILE.items() if k != missing}
    with pytest.raises(AutopruneError, match=f"missing field '{missing}'"):
        load_profile(str(_write(tmp_path, data)))


def test_measured_profile_needs_a_runtime(tmp_path: Path) -> None:
    data = {**USER_PROFILE, "kind": "measured"}
    with pytest.raises(AutopruneError, match="missing field 'runtime' .*kind 'measured'"):
        load_profile(str(_write(tmp_path, data)))


def test_flat_timing_fields_of_the_yaml_fill_the_measurement_settings(tmp_path: Path) -> None:
    timing = {"runtime": "torch", "threads": 2, "quantile": 0.1, "model_seconds": 0}
    data = {**USER_PROFILE, "kind": "measured", "batch_size": 4, **timing}
    profile = load_profile(str(_write(tmp_path, data)))
    assert profile.measurement == MeasurementSettings(
        runtime="torch", threads=2, quantile=0.1, model_seconds=0.0
    )
    assert profile.batch_size == 4
    assert load_profile(str(_write(tmp_path, USER_PROFILE))).measurement == MeasurementSettings()


def test_the_measurement_is_not_a_yaml_field(tmp_path: Path) -> None:
    data = {**USER_PROFILE, "measurement": {"threads": 2}}
    with pytest.raises(AutopruneError, match="unknown field 'measurement'.*threads, warmup"):
        load_profile(str(_write(tmp_path, data)))


def test_unknown_name_lists_the_packaged_profiles() -> None:
    with pytest.raises(AutopruneError) as info:
        load_profile("tpu")
    assert "unknown hardware profile 'tpu'" in str(info.value)
    assert "bitfusion, cpu, mobile-cpu" in str(info.value)


def test_missing_yaml_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="does not exist"):
        load_profile(str(tmp_path / "absent.yaml"))


def test_malformed_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nkind: [roofline\n")
    with pytest.raises(AutopruneError, match="not valid YAML"):
        load_profile(str(path))


def test_yaml_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="must be a YAML mapping"):
        load_profile(str(_write(tmp_path, ["a", "b"])))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"peak_macs": 1}, "unknown field 'peak_macs'"),
        ({"kind": "gpu"}, "'kind' is 'gpu'; use one of: measured, roofline"),
        ({"sram_bytes": -1}, "'sram_bytes' must be a positive number"),
        ({"sram_bytes": "lots"}, "'sram_bytes' must be a positive number"),
        ({"sram_bytes": 10.5}, "'sram_bytes' must be a whole number"),
        ({"threads": True}, "'threads' must be a positive number"),
        ({"quantile": 1.5}, r"'quantile' must be in \(0, 1\] \(0.5 is the median\)"),
        ({"quantile": 0}, "'quantile' must be a positive number"),
        ({"rounds": 2.5}, "'rounds' must be a whole number"),
        ({"min_seconds": -1}, "'min_seconds' must be a non-negative number"),
        ({"energy": {"dram": 1}}, "unknown energy field 'dram'"),
        ({"energy": {"dram_pj_per_bit": 0}}, "'dram_pj_per_bit' must be a positive number"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(AutopruneError, match=message):
        load_profile(str(_write(tmp_path, {**USER_PROFILE, **change})))
