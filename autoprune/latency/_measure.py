"""The timer: ONNX graphs and PyTorch modules timed in interleaved rounds, pinned to CPUs.

Every latency autoprune measures goes through :func:`time_calls` inside :func:`pinned`, and
keeps one :func:`quantile` of the calls (the profile's; 0.5 is the median): single layers for
the lookup table (kernel time from ONNX Runtime's profiler,
:func:`~autoprune.latency._kernels.measure_together`), whole models for the calibration line
and its validation, and the deployed models of ``apply`` and the benchmarks
(:func:`~autoprune.latency.measure_latency`). This module also times one graph or module
alone (:func:`measure_onnx_latency`, :func:`measure_torch_latency`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode

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


@contextmanager
def pinned(threads: int) -> Iterator[None]:
    """Pin the calling thread (and threads it starts) to ``threads`` CPUs meanwhile.

    Unpinned, the scheduler moves a measurement between CPUs and the same model times up to
    30-45% slower in some windows than in others on this project's 2-core machine; pinned,
    repeated windows agree within a few percent. The last allowed CPUs are used (the first
    one tends to serve interrupts). No-op where the OS has no affinity call.
    """
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    chosen = sorted(before)[-threads:]
    os.sched_setaffinity(0, chosen)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


MAX_ROUNDS = 200
"""Most interleaved rounds a time-bounded measurement runs."""


def time_calls(
    runs: Sequence[Callable[[], object]],
    *,
    warmup: int,
    repeats: int,
    rounds: int = 1,
    min_seconds: float = 0.0,
) -> list[list[float]]:
    """Wall-clock ms of every timed call of each of ``runs``, in interleaved rounds.

    Each runner is first called ``warmup`` times untimed; then every round calls each runner
    ``repeats`` times in turn, at least ``rounds`` rounds and until ``min_seconds`` have
    passed (at most :data:`MAX_ROUNDS`), so a slowdown of the machine meanwhile touches all
    runners alike. ``repeats=1`` alternates the runners call by call (A, B, A, B, ...).
    Callers pin the measuring thread first (:func:`pinned`).

    Example:
        >>> calls = []
        >>> samples = time_calls([lambda: calls.append("a"), lambda: calls.append("b")],
        ...                      warmup=1, repeats=1, rounds=2)
        >>> "".join(calls), [len(s) for s in samples]  # one warm-up call each, then 2 rounds
        ('ababab', [2, 2])
    """
    for run in runs:
        for _ in range(warmup):
            run()
    samples: list[list[float]] = [[] for _ in runs]
    started = time.perf_counter()
    done = 0
    while done < rounds or (time.perf_counter() - started < min_seconds and done < MAX_ROUNDS):
        for run, times in zip(runs, samples, strict=True):
            for _ in range(repeats):
                begin = time.perf_counter_ns()
                run()
                times.append((time.perf_counter_ns() - begin) / 1e6)
        done += 1
    return samples


def median_ms(run: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median wall-clock milliseconds of ``run()`` after ``warmup`` untimed calls."""
    return quantile(time_calls([run], warmup=warmup, repeats=repeats)[0], 0.5)


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def ort_session(model: str | Path | bytes, threads: int) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads and sequential execution."""
    options = _session_options(threads)
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
    with pinned(threads):
        session = ort_session(model, threads)
        return _median_of_session(session, input_shape, warmup, repeats)


def _median_of_session(
    session: ort.InferenceSession, input_shape: tuple[int, ...], warmup: int, repeats: int
) -> float:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise AutopruneError(
            f"ONNX model has {len(inputs)} inputs; latency is measured for one-input models only"
        )
    feed = {inputs[0].name: _random_input(inputs[0].type, input_shape, np.random.default_rng(0))}
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

    The global thread count and the training flags are restored afterwards.

    Example:
        >>> measure_torch_latency(nn.Linear(4, 2), (1, 4), repeats=3) > 0
        True
    """
    _check_settings(threads, warmup, repeats)
    device = next(iter(model.parameters()), torch.zeros(())).device
    data = torch.randn(input_shape, device=device)

    def forward() -> None:
        model(data)
        if device.type == "cuda":  # kernels run asynchronously: time until they finish
            torch.cuda.synchronize(device)

    with torch_settings([model], threads), pinned(threads):
        return median_ms(forward, warmup, repeats)


@contextmanager
def torch_settings(models: Sequence[nn.Module], threads: int) -> Iterator[None]:
    """Eval mode, ``threads`` threads and inference mode; all restored on exit."""
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with eval_mode(*models), torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(previous)


def _random_feed(
    session: ort.InferenceSession, rng: np.random.Generator, batch_size: int = 1
) -> dict:
    """Random data for every input of ``session`` (symbolic dimensions become ``batch_size``)."""
    return {
        item.name: _random_input(
            item.type, [d if isinstance(d, int) else batch_size for d in item.shape], rng
        )
        for item in session.get_inputs()
    }


def _random_input(onnx_type: str, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Random data of an ONNX input type: normal floats, or integers 0..99."""
    dtype = _ORT_DTYPES.get(onnx_type)
    if dtype is None:
        raise AutopruneError(
            f"ONNX input type {onnx_type} is not supported; use float32, uint8 or int8"
        )
    if dtype is np.float32:
        return rng.standard_normal(shape).astype(np.float32)
    return rng.integers(0, 100, size=shape).astype(dtype)


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear interpolation); 0.0 for no values.

    Example:
        >>> quantile([4.0, 1.0, 3.0, 2.0], 0.5)
        2.5
    """
    return float(np.quantile(np.asarray(values, dtype=float), q)) if len(values) else 0.0
