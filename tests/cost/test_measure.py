from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.cost import LayerKey, measure_onnx_latency, measure_torch_latency
from autoprune.cost._layer_graphs import layer_onnx
from autoprune.cost._measure import median_ms
from autoprune.errors import AutopruneError

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
