"""Wall-clock latency of an ONNX graph (ONNX Runtime) or a PyTorch module: median of runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autoprune.errors import AutopruneError

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


def _check_settings(threads: int, warmup: int, repeats: int) -> None:
    if threads < 1:
        raise AutopruneError(f"threads {threads} must be at least 1; pass threads=1")
    if warmup < 0:
        raise AutopruneError(f"warmup {warmup} must be 0 or more untimed runs")
    if repeats < 1:
        raise AutopruneError(f"repeats {repeats} must be at least 1 timed run")


def median_ms(run: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median wall-clock milliseconds of ``run()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def ort_session(model: str | Path | bytes, threads: int) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads and sequential execution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def measure_onnx_latency(
    model: str | Path | bytes,
    input_shape: tuple[int, ...],
    *,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median latency in ms of one ONNX Runtime call on a random input.

    Args:
        model: Path of an ``.onnx`` file or the serialized model bytes; one input.
        input_shape: Full input shape including the batch dimension.
        threads: Intra-op threads of the session.
        warmup: Untimed runs first.
        repeats: Timed runs; the median is returned.

    Example:
        >>> import onnx
        >>> from onnx import TensorProto, helper
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
        >>> graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
        >>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        >>> measure_onnx_latency(model.SerializeToString(), (1, 4), repeats=3) > 0
        True
    """
    _check_settings(threads, warmup, repeats)
    if not isinstance(model, bytes) and not Path(model).is_file():
        raise AutopruneError(f"ONNX model {model} does not exist; pass an existing .onnx path")
    session = ort_session(model, threads)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise AutopruneError(
            f"ONNX model has {len(inputs)} inputs; latency is measured for one-input models only"
        )
    dtype = _ORT_DTYPES.get(inputs[0].type)
    if dtype is None:
        raise AutopruneError(
            f"ONNX input type {inputs[0].type} is not supported; use float32, uint8 or int8"
        )
    rng = np.random.default_rng(0)
    if dtype is np.float32:
        data = rng.standard_normal(input_shape).astype(np.float32)
    else:
        data = rng.integers(0, 100, size=input_shape).astype(dtype)
    feed = {inputs[0].name: data}
    return median_ms(lambda: session.run(None, feed), warmup, repeats)


def measure_torch_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median latency in ms of one eager forward pass under ``torch.inference_mode``.

    The global thread count and the model's train/eval mode are restored afterwards.

    Example:
        >>> measure_torch_latency(nn.Linear(4, 2), (1, 4), repeats=3) > 0
        True
    """
    _check_settings(threads, warmup, repeats)
    device = next(iter(model.parameters()), torch.zeros(())).device
    data = torch.randn(input_shape, device=device)
    previous_threads = torch.get_num_threads()
    was_training = model.training
    torch.set_num_threads(threads)
    model.eval()
    try:
        with torch.inference_mode():
            return median_ms(lambda: model(data), warmup, repeats)
    finally:
        torch.set_num_threads(previous_threads)
        model.train(was_training)
