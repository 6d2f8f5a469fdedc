from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoprune.cost import LatencyTable, LayerKey, RuntimeSettings, load_profile
from autoprune.cost._lut import cpu_model, runtime_fingerprint
from autoprune.errors import AutopruneError


def _key(cin: int = 4, precision: str = "fp32", batch: int = 1) -> LayerKey:
    return LayerKey("conv", cin, 8, (3, 3), (1, 1), 1, (6, 6), (1, 1, 1, 1), precision, batch)


class Counter:
    """A fake timer: one call per measurement, latency grows with input channels."""

    def __init__(self) -> None:
        self.layers: list[str] = []
        self.fixed = 0

    def measure(self, key: LayerKey, settings: RuntimeSettings) -> float:
        self.layers.append(str(key))
        return 0.1 * key.in_channels

    def overhead(self, settings: RuntimeSettings) -> float:
        self.fixed += 1
        return 0.05


def _table(cache: Path | None, counter: Counter, **settings: int) -> LatencyTable:
    return LatencyTable(
        RuntimeSettings(**settings),  # type: ignore[arg-type]
        cache,
        measure=counter.measure,
        measure_fixed=counter.overhead,
    )


def test_second_build_over_the_same_cache_does_no_measurement(tmp_path: Path) -> None:
    keys = [_key(4), _key(8), _key(4), _key(4, "int8")]
    first = Counter()
    table = _table(tmp_path, first)
    table.ensure(keys)
    assert sorted(first.layers) == sorted({str(k) for k in keys}) and first.fixed == 1
    assert table.measurements == 4 and len(table) == 3
    second = Counter()
    again = _table(tmp_path, second)
    again.ensure(keys)
    assert (second.layers, second.fixed, again.measurements) == ([], 0, 0)
    assert again.latency_ms(_key(8)) == pytest.approx(0.8)
    assert again.overhead_ms == pytest.approx(0.05)
    assert _key(8) in again and _key(16) not in again


def test_cache_file_is_named_by_the_runtime_fingerprint(tmp_path: Path) -> None:
    table = _table(tmp_path, Counter(), threads=1)
    table.ensure([_key()])
    assert table.path == tmp_path / f"latency-{table.fingerprint_id}.json"
    data = json.loads(table.path.read_text())
    assert data["fingerprint"] == runtime_fingerprint(RuntimeSettings(threads=1))
    assert data["fingerprint"]["cpu"] == cpu_model() != ""
    assert {"runtime_version", "threads", "batch_size"} <= set(data["fingerprint"])
    assert data["entries"] == {str(_key()): pytest.approx(0.4)}
    assert [p.name for p in tmp_path.iterdir()] == [table.file_name]  # no temporary files


def test_batch_size_and_threads_change_the_fingerprint(tmp_path: Path) -> None:
    ids = {
        _table(tmp_path, Counter(), **s).fingerprint_id
        for s in ({}, {"batch_size": 8}, {"threads": 2}, {"runtime": "torch"})  # type: ignore
    }
    assert len(ids) == 4
    assert str(_key(batch=1)) != str(_key(batch=8))


def test_tables_of_two_processes_merge_on_save(tmp_path: Path) -> None:
    one, two = _table(tmp_path, Counter()), _table(tmp_path, Counter())
    one.ensure([_key(4)])
    two.ensure([_key(8)])
    merged = Counter()
    _table(tmp_path, merged).ensure([_key(4), _key(8)])
    assert merged.layers == []


def test_in_memory_table_writes_nothing(tmp_path: Path) -> None:
    table = _table(None, Counter())
    assert table.latency_ms(_key()) == pytest.approx(0.4)
    assert table.path is None and list(tmp_path.iterdir()) == []


def test_corrupt_or_foreign_cache_is_reported(tmp_path: Path) -> None:
    table = _table(tmp_path, Counter())
    table.ensure([_key()])
    assert table.path is not None
    data = json.loads(table.path.read_text())
    table.path.write_text(json.dumps({**data, "fingerprint": {"cpu": "other"}}))
    with pytest.raises(AutopruneError, match="another machine"):
        _table(tmp_path, Counter())
    table.path.write_text("{not json")
    with pytest.raises(AutopruneError, match="corrupt; delete it"):
        _table(tmp_path, Counter())


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_real_measurements_are_positive_and_cached(tmp_path: Path, runtime: str) -> None:
    settings = RuntimeSettings(runtime=runtime, warmup=1, repeats=3)  # type: ignore[arg-type]
    table = LatencyTable(settings, tmp_path)
    keys = [_key(2), _key(2, "int8" if runtime == "onnxruntime" else "fp32")]
    table.ensure(keys)
    assert all(table.latency_ms(k) > 0 for k in keys) and table.overhead_ms > 0
    reloaded = LatencyTable(settings, tmp_path)
    reloaded.ensure(keys)
    assert reloaded.measurements == 0


def test_settings_come_from_a_measured_profile() -> None:
    settings = RuntimeSettings.from_profile(load_profile("cpu"))
    assert settings == RuntimeSettings("onnxruntime", threads=1, batch_size=1, warmup=3, repeats=10)
