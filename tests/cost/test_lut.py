from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.cost import MeasurementSettings, load_profile
from autoprune.latency import (
    KernelTiming,
    LatencyTable,
    LayerKey,
    LayerSumLine,
    build_cost_model,
)
from autoprune.latency._lut import (
    MAX_ATTEMPTS,
    cpu_model,
    probe_key,
    runtime_fingerprint,
    window_args,
)
from autoprune.system.verified import CacheWarning


def _key(cin: int = 4, precision: str = "fp32", batch: int = 1) -> LayerKey:
    return LayerKey("conv", cin, 8, (3, 3), (1, 1), 1, (6, 6), (1, 1, 1, 1), precision, batch)


PROBE = str(probe_key())


class Counter:
    """A fake timer: latency grows with input channels; ``slowdown`` scales a whole batch."""

    def __init__(self, slowdown: float = 1.0) -> None:
        self.layers: list[str] = []
        self.fixed = 0
        self.slowdown = slowdown

    def measure(self, keys: list[LayerKey], settings: MeasurementSettings) -> list[KernelTiming]:
        self.layers += [str(k) for k in keys if str(k) != PROBE]
        return [KernelTiming(0.1 * k.in_channels * self.slowdown) for k in keys]

    def overhead(self, settings: MeasurementSettings, batch_size: int) -> float:
        self.fixed += 1
        return 0.05 * batch_size


def _table(
    cache: Path | None, counter: Counter, batch_size: int = 1, **settings: object
) -> LatencyTable:
    return LatencyTable(
        MeasurementSettings(**settings),  # type: ignore[arg-type]
        cache,
        batch_size=batch_size,
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
    assert data["fingerprint"] == runtime_fingerprint(MeasurementSettings(threads=1))
    assert data["fingerprint"]["cpu"] == cpu_model() != ""
    assert {"runtime_version", "threads", "batch_size"} <= set(data["fingerprint"])
    assert data["entries"] == {
        str(_key()): {"kernel_ms": pytest.approx(0.4), "reorder_in_ms": 0, "reorder_out_ms": 0}
    }
    assert data["reference_ms"] == pytest.approx(0.1 * 64)
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


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: json.dumps({**json.loads(text), "fingerprint": {"cpu": "other"}}),
        lambda text: "{not json",
        lambda text: text.replace('"kernel_ms": 0.4', '"kernel_ms": 0.9', 1),  # still JSON
    ],
    ids=["foreign", "not-json", "changed-number"],
)
def test_damaged_cache_is_kept_aside_and_measured_again(
    tmp_path: Path, damage: Callable[[str], str]
) -> None:
    table = _table(tmp_path, Counter())
    table.ensure([_key()])
    assert table.path is not None
    text = table.path.read_text()
    damaged = damage(text)
    assert damaged != text
    table.path.write_text(damaged)
    counter = Counter()
    with pytest.warns(CacheWarning, match="is damaged"):
        again = _table(tmp_path, counter)
    assert len(again) == 0 and again.latency_ms(_key()) == pytest.approx(0.4)
    assert counter.layers == [str(_key())]  # measured again, not read from the damaged file
    kept = list(tmp_path.glob("latency-*.json.damaged-*"))
    assert [p.read_text() for p in kept] == [damaged]  # the user's file is kept, unchanged
    assert json.loads(table.path.read_text())["sha256"]  # the new table records its hash


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_real_measurements_are_positive_and_cached(tmp_path: Path, runtime: str) -> None:
    settings = MeasurementSettings(runtime=runtime, warmup=1, repeats=3)  # type: ignore[arg-type]
    table = LatencyTable(settings, tmp_path)
    keys = [_key(2), _key(2, "int8" if runtime == "onnxruntime" else "fp32")]
    table.ensure(keys)
    assert all(table.latency_ms(k) > 0 for k in keys) and table.overhead_ms > 0
    reloaded = LatencyTable(settings, tmp_path)
    reloaded.ensure(keys)
    assert reloaded.measurements == 0


def test_the_table_times_with_the_profiles_own_settings(tmp_path: Path) -> None:
    profile = load_profile("cpu")
    table = build_cost_model(profile, lut_cache_dir=tmp_path).table  # type: ignore[attr-defined]
    assert table.settings is profile.measurement and table.batch_size == profile.batch_size
    settings = profile.measurement
    assert 0 < settings.quantile < 0.5 and settings.rounds > 1
    assert window_args(settings, 4) == {
        "threads": settings.threads,
        "warmup": settings.warmup,
        "repeats": settings.repeats,
        "rounds": settings.rounds,
        "min_seconds": settings.min_seconds,
        "q": settings.quantile,
        "batch_size": 4,
    }


def test_the_cache_key_of_a_profile_keeps_its_format() -> None:
    profile = load_profile("cpu")
    fingerprint = runtime_fingerprint(profile.measurement, profile.batch_size)
    assert list(fingerprint) == [
        "format",
        "cpu",
        "machine",
        "runtime",
        "runtime_version",
        "threads",
        "batch_size",
        "quantile",
    ]
    assert (fingerprint["runtime"], fingerprint["threads"]) == ("onnxruntime", 1)
    assert (fingerprint["batch_size"], fingerprint["quantile"]) == (1, 0.02)


def test_the_overhead_is_timed_at_the_tables_batch_size() -> None:
    table = _table(None, Counter(), batch_size=4)
    assert table.overhead_ms == pytest.approx(0.2)
    assert table.fingerprint["batch_size"] == 4


class Busy(Counter):
    """A timer on a machine that is busy (everything 1.5x slower) for the first ``busy`` tries."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.busy = busy
        self.tries = 0

    def measure(self, keys: list[LayerKey], settings: MeasurementSettings) -> list[KernelTiming]:
        self.tries += 1
        self.slowdown = 1.5 if self.tries <= self.busy else 1.0
        return super().measure(keys, settings)


def test_a_batch_measured_while_the_machine_is_busy_is_measured_again(tmp_path: Path) -> None:
    _table(tmp_path, Counter()).ensure([_key(4)])  # the idle machine's probe: 6.4 ms
    pauses: list[float] = []
    busy = Busy(busy=1)
    table = LatencyTable(MeasurementSettings(), tmp_path, measure=busy.measure, pause=pauses.append)
    table.ensure([_key(8)])
    assert busy.tries == 2 and len(pauses) == 1
    assert table.latency_ms(_key(8)) == pytest.approx(0.8)  # the idle try was kept


def test_a_machine_busy_for_every_try_keeps_the_fastest_and_stops(tmp_path: Path) -> None:
    _table(tmp_path, Counter()).ensure([_key(4)])
    busy = Busy(busy=99)
    table = LatencyTable(
        MeasurementSettings(), tmp_path, measure=busy.measure, pause=lambda s: None
    )
    table.ensure([_key(8)])
    assert busy.tries == MAX_ATTEMPTS
    assert table.latency_ms(_key(8)) == pytest.approx(1.2)
    assert table.is_slow(0.1 * 64 * 1.5) and not table.is_slow(0.1 * 64)


def test_the_fastest_probe_seen_is_the_reference(tmp_path: Path) -> None:
    table = _table(tmp_path, Counter(slowdown=2.0))
    table.ensure([_key(4)])
    assert table.reference_ms == pytest.approx(12.8)
    table.note_probe(6.4)
    table.note_probe(9.0)
    assert table.reference_ms == pytest.approx(6.4)


def test_layer_sum_lines_are_stored_per_model_and_survive_a_reload(tmp_path: Path) -> None:
    table = _table(tmp_path, Counter())
    assert table.line("net") is None
    table.set_line("net", LayerSumLine(0.9, -0.05, 4))
    table.ensure([_key()])
    again = _table(tmp_path, Counter())
    assert again.line("net") == LayerSumLine(0.9, -0.05, 4)
    assert again.line("other") is None


def test_a_timer_returning_the_wrong_count_is_an_error() -> None:
    table = LatencyTable(MeasurementSettings(), measure=lambda keys, s: [KernelTiming(1.0)])
    with pytest.raises(AutopruneError, match="one per key"):
        table.ensure([_key(4), _key(8)])
