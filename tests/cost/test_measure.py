from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.latency import (
    LayerKey,
    layer_onnx,
    measure_onnx_latency,
    measure_together,
    measure_torch_latency,
    pinned,
    quantile,
)
from autoprune.latency._kernels import _run_sums
from autoprune.latency._measure import median_ms

KEY = LayerKey("conv", 2, 4, (3, 3), (1, 1), 1, (6, 6), (1, 1, 1, 1), "fp32", 1)


def test_median_ms_runs_warmup_then_repeats_and_takes_the_median() -> None:
    calls: list[int] = []
    result = median_ms(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(calls) == 7
    assert result >= 0.0


def test_onnx_latency_from_bytes_and_from_a_file(tmp_path: Path) -> None:
    model = layer_onnx(KEY)
    assert measure_onnx_latency(model, KEY.input_shape, warmup=1, repeats=3) > 0
    path = tmp_path / "layer.onnx"
    path.write_bytes(model)
    assert measure_onnx_latency(path, KEY.input_shape, warmup=0, repeats=1) > 0
    int8 = LayerKey(**{**KEY.__dict__, "precision": "int8"})
    assert measure_onnx_latency(layer_onnx(int8), int8.input_shape, repeats=2) > 0


def test_onnx_latency_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="does not exist"):
        measure_onnx_latency(tmp_path / "none.onnx", (1, 2))
    with pytest.raises(AutopruneError, match="repeats 0"):
        measure_onnx_latency(layer_onnx(KEY), KEY.input_shape, repeats=0)
    with pytest.raises(AutopruneError, match="threads 0"):
        measure_onnx_latency(layer_onnx(KEY), KEY.input_shape, threads=0)


def test_torch_latency_restores_threads_and_training_mode() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU())
    model.train()
    before = torch.get_num_threads()
    assert measure_torch_latency(model, (1, 2, 6, 6), threads=1, warmup=1, repeats=3) > 0
    assert torch.get_num_threads() == before
    assert model.training
    with pytest.raises(AutopruneError, match="warmup -1"):
        measure_torch_latency(model, (1, 2, 6, 6), warmup=-1)


def test_profiled_kernel_sums_split_edges_and_leave_out_sinks() -> None:
    runs = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
    ]
    nodes = [
        ("ReorderInput", 5, 3),
        ("conv", 10, 40),
        ("ReorderOutput", 60, 4),
        ("sink0", 70, 9),
        ("conv", 210, 50),
        ("ReorderInput", 205, 2),
    ]
    events = runs + [
        {"cat": "Node", "name": f"{n}_kernel_time", "ts": ts, "dur": dur, "args": {}}
        for n, ts, dur in nodes
    ]
    groups = {"in": {"ReorderInput"}, "out": {"ReorderOutput"}, "sink": {"sink0"}}
    sums = _run_sums(events, 0, groups)
    assert sums == {"kernel": [40, 50], "in": [3, 2], "out": [4, 0], "sink": [9, 0]}
    assert _run_sums(events, 1, groups)["kernel"] == [50]  # warm-up runs are skipped


def test_measure_together_times_layers_by_kernels_and_models_by_wall_clock(
    tmp_path: Path,
) -> None:
    blocked = LayerKey("conv", 16, 16, (3, 3), (1, 1), 1, (14, 14), (1, 1, 1, 1), "fp32", 1)
    path = tmp_path / "layer.onnx"
    path.write_bytes(layer_onnx(KEY))
    kernels, walls = measure_together(
        [layer_onnx(KEY), layer_onnx(blocked)], [path], warmup=1, repeats=3, rounds=2, q=0.1
    )
    assert len(kernels) == 2 and len(walls) == 1
    assert all(k.kernel_ms > 0 for k in kernels) and walls[0] > 0
    assert kernels[0].reorder_in_ms == 0  # 2 input channels stay in plain NCHW
    with pytest.raises(AutopruneError, match="rounds 0"):
        measure_together([layer_onnx(KEY)], rounds=0)
    with pytest.raises(AutopruneError, match="does not exist"):
        measure_together([], [tmp_path / "none.onnx"])


def test_quantile_interpolates_and_handles_no_values() -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([5.0, 1.0], 0.0) == 1.0
    assert quantile([], 0.1) == 0.0


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_pinning_uses_the_last_allowed_cpus_and_restores_the_mask() -> None:
    before = os.sched_getaffinity(0)
    with pinned(1):
        assert os.sched_getaffinity(0) == {max(before)}
    assert os.sched_getaffinity(0) == before
