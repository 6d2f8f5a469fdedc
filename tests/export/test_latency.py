"""Measured latency: statistics are ordered, settings are restored, comparison rows add up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.export import export_onnx
from autoprune.latency import LatencyStats, compare_latency, measure_latency

SHAPE = (1, 8, 8)


def _assert_ordered(stats: LatencyStats, repeats: int) -> None:
    assert stats.repeats == repeats
    assert 0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.mean_ms > 0


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_measure_module(runtime: str, plain_net: nn.Module) -> None:
    stats = measure_latency(plain_net, SHAPE, runtime=runtime, batch_size=2, warmup=1, repeats=7)
    _assert_ordered(stats, 7)
    assert (stats.runtime, stats.batch_size, stats.threads) == (runtime, 2, 1)


def test_measure_onnx_file(plain_net: nn.Module, tmp_path: Path) -> None:
    path = export_onnx(plain_net, torch.zeros(1, *SHAPE), tmp_path / "m.onnx")
    _assert_ordered(measure_latency(path, SHAPE, runtime="onnxruntime", repeats=5), 5)


def test_torch_threads_and_training_mode_are_restored(plain_net: nn.Module) -> None:
    threads = torch.get_num_threads()
    plain_net.train()
    measure_latency(plain_net, SHAPE, runtime="torch", threads=threads + 1, warmup=0, repeats=2)
    assert torch.get_num_threads() == threads
    assert all(module.training for module in plain_net.modules())


def test_bad_arguments_raise(plain_net: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="runtime"):
        measure_latency(plain_net, SHAPE, runtime="tvm")  # type: ignore[arg-type]
    with pytest.raises(AutopruneError, match="nn.Module"):
        measure_latency(tmp_path / "m.onnx", SHAPE, runtime="torch")
    with pytest.raises(AutopruneError, match="does not exist"):
        measure_latency(tmp_path / "m.onnx", SHAPE, runtime="onnxruntime")
    with pytest.raises(AutopruneError, match="repeats"):
        measure_latency(plain_net, SHAPE, runtime="torch", repeats=0)


def test_stats_from_samples() -> None:
    stats = LatencyStats.from_samples([4.0, 1.0, 3.0, 2.0, 5.0], "torch", 1, 1)
    assert (stats.median_ms, stats.mean_ms, stats.repeats) == (3.0, 3.0, 5)
    assert stats.p10_ms == pytest.approx(1.4) and stats.p90_ms == pytest.approx(4.6)
    assert stats.to_dict()["runtime"] == "torch"


def test_compare_latency_rows(
    residual_net: nn.Module, plain_net: nn.Module, tmp_path: Path
) -> None:
    int8 = export_onnx(plain_net, torch.zeros(1, *SHAPE), tmp_path / "stand_in.onnx")
    rows = compare_latency(
        residual_net, plain_net, SHAPE, batch_sizes=(1, 3), int8_path=int8, warmup=1, repeats=3
    )
    assert [(r["runtime"], r["batch"]) for r in rows] == [
        ("onnxruntime", 1),
        ("onnxruntime", 3),
        ("torch", 1),
        ("torch", 3),
        ("onnxruntime-int8", 1),
        ("onnxruntime-int8", 3),
    ]
    for row in rows:
        assert row["original_ms"] > 0 and row["compressed_ms"] > 0
        assert row["speedup"] == pytest.approx(row["original_ms"] / row["compressed_ms"])
    assert all(row["threads"] == 1 for row in rows)


def test_compare_latency_rejects_paths_for_torch(plain_net: nn.Module, tmp_path: Path) -> None:
    path = export_onnx(plain_net, torch.zeros(1, *SHAPE), tmp_path / "m.onnx")
    with pytest.raises(AutopruneError, match="nn.Module"):
        compare_latency(plain_net, path, SHAPE, runtimes=("torch",), repeats=1)
    with pytest.raises(AutopruneError, match="batch_size"):
        compare_latency(plain_net, plain_net, SHAPE, batch_sizes=(0,))
