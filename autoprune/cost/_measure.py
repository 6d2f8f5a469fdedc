"""Timing ONNX graphs and PyTorch modules: wall clock of whole models, and kernel time of
single-layer graphs from ONNX Runtime's profiler, measured together in interleaved rounds
with the measuring thread pinned to one CPU.
"""

from __future__ import annotations

import bisect
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from autoprune.cost._layer_graphs import SINK_PREFIX
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
        with torch.inference_mode(), pinned(threads):
            return median_ms(lambda: model(data), warmup, repeats)
    finally:
        torch.set_num_threads(previous_threads)
        model.train(was_training)


MAX_ROUNDS = 200
"""Most interleaved rounds a time-bounded measurement runs."""


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


@dataclass(frozen=True)
class KernelTiming:
    """Where the time of one single-layer graph goes, from ONNX Runtime's profiler (ms).

    Attributes:
        kernel_ms: The layer and its epilogue, including layout conversions inside the graph.
        reorder_in_ms: Converting the layer's input to the blocked NCHWc layout; 0 when the
            layer reads plain NCHW. A model pays it only after a layer with plain output.
        reorder_out_ms: Converting the output back to NCHW at the graph's end; 0 when the
            output is plain. A model pays it only before a layer with plain input.
    """

    kernel_ms: float
    reorder_in_ms: float = 0.0
    reorder_out_ms: float = 0.0


def _node_groups(optimized: onnx.ModelProto, main_input: str) -> dict[str, set[str]]:
    """Node names of the graph's edges: layout conversions of the main input, of the side
    inputs and of the outputs, and the untimed sinks (named ``sink...``).

    Layout conversions are the blocked-layout ``ReorderInput`` / ``ReorderOutput`` of fp32
    graphs and the NHWC ``Transpose`` nodes ONNX Runtime puts around ``QLinearConv`` (the
    timed graphs hold no Transpose of their own). Conversions inside the graph (before a
    flatten) are the layer's own time.
    """
    inputs = {i.name for i in optimized.graph.input}
    groups: dict[str, set[str]] = {"in": set(), "side": set(), "out": set(), "sink": set()}
    sink_inputs = set()
    for node in optimized.graph.node:
        if node.name.startswith(SINK_PREFIX):
            groups["sink"].add(node.name)
            sink_inputs.update(node.input)
    for node in optimized.graph.node:
        if node.op_type == "ReorderInput" and node.input[0] in inputs:
            groups["in" if node.input[0] == main_input else "side"].add(node.name)
        elif node.op_type == "ReorderOutput" and node.output[0] in sink_inputs:
            groups["out"].add(node.name)
        elif node.op_type == "Transpose" and node.input[0] in inputs:
            groups["in" if node.input[0] == main_input else "side"].add(node.name)
        elif node.op_type == "Transpose" and node.output[0] in sink_inputs:
            groups["out"].add(node.name)
    return groups


def _run_sums(
    events: list[dict], skip_runs: int, groups: dict[str, set[str]]
) -> dict[str, list[float]]:
    """Per timed run, the summed kernel microseconds of each group of nodes.

    A node in no group counts towards ``"kernel"``.
    """
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )[skip_runs:]
    starts = [start for start, _ in runs]
    sums = {name: [0.0] * len(runs) for name in ("kernel", *groups)}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        group = next((g for g, nodes in groups.items() if node in nodes), "kernel")
        run = bisect.bisect_right(starts, event["ts"]) - 1
        if run >= 0 and event["ts"] <= runs[run][1]:
            sums[group][run] += event["dur"]
    return sums


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear interpolation); 0.0 for no values.

    Example:
        >>> quantile([4.0, 1.0, 3.0, 2.0], 0.5)
        2.5
    """
    return float(np.quantile(np.asarray(values, dtype=float), q)) if len(values) else 0.0


def _session(model: str | Path | bytes, threads: int, profile_to: Path | None) -> tuple:
    """A session, and for profiled ones the node groups of its optimized graph."""
    options = _session_options(threads)
    if profile_to is None:
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"]), None
    options.enable_profiling = True
    options.profile_file_prefix = str(profile_to / "profile")
    options.optimized_model_filepath = str(profile_to / "optimized.onnx")
    assert isinstance(model, bytes), "profiled graphs are passed as bytes"
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    main_input = session.get_inputs()[0].name
    return session, _node_groups(onnx.load(str(profile_to / "optimized.onnx")), main_input)


def measure_together(
    profiled: Sequence[bytes] = (),
    timed: Sequence[str | Path | bytes] = (),
    *,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 10,
    rounds: int = 1,
    min_seconds: float = 0.0,
    q: float = 0.5,
    batch_size: int = 1,
) -> tuple[list[KernelTiming], list[float]]:
    """Time several graphs in one window: kernel times of ``profiled``, wall time of ``timed``.

    ``profiled`` graphs are timed with ONNX Runtime's profiler (:class:`KernelTiming`: the
    per-call cost of ``session.run`` left out, layout conversions at the graph's edges
    reported apart). ``timed`` graphs (whole models) are timed by wall clock, in ms. All run
    in interleaved rounds of ``repeats`` calls each, at least ``rounds`` rounds and until
    ``min_seconds`` have passed (at most :data:`MAX_ROUNDS`), so a slowdown of the machine
    meanwhile touches them alike; the ``q`` quantile of each graph's calls is kept.
    Symbolic input dimensions (a dynamic batch) are fed ``batch_size``.

    Example:
        >>> import onnx
        >>> from onnx import TensorProto, helper
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
        >>> graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
        >>> relu = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        >>> kernels, walls = measure_together([relu.SerializeToString()],
        ...                                   [relu.SerializeToString()], repeats=5)
        >>> kernels[0].kernel_ms >= 0 and walls[0] > 0
        True
    """
    _check_settings(threads, warmup, repeats)
    if rounds < 1:
        raise AutopruneError(f"rounds {rounds} must be at least 1")
    for model in timed:
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise AutopruneError(f"ONNX model {model} does not exist; pass an existing .onnx path")
    with tempfile.TemporaryDirectory(prefix="autoprune-profile-") as tmp, pinned(threads):
        runs = []
        for index, model in enumerate([*profiled, *timed]):
            folder = Path(tmp) / str(index) if index < len(profiled) else None
            if folder is not None:
                folder.mkdir()
            session, groups = _session(model, threads, folder)
            feed = _random_feed(session, np.random.default_rng(0), batch_size)
            runs.append((session, feed, groups))
        for session, feed, _ in runs:
            for _ in range(warmup):
                session.run(None, feed)
        walls: list[list[float]] = [[] for _ in runs]
        started = time.perf_counter()
        done = 0
        while done < rounds or (time.perf_counter() - started < min_seconds and done < MAX_ROUNDS):
            for index, (session, feed, _) in enumerate(runs):
                for _ in range(repeats):
                    begin = time.perf_counter_ns()
                    session.run(None, feed)
                    walls[index].append((time.perf_counter_ns() - begin) / 1e6)
            done += 1
        kernels = []
        for session, _, groups in runs[: len(profiled)]:
            events = json.loads(Path(session.end_profiling()).read_text())
            sums = _run_sums(events, warmup, groups)
            kernels.append(
                KernelTiming(
                    kernel_ms=quantile(sums["kernel"], q) / 1e3,
                    reorder_in_ms=quantile(sums["in"], q) / 1e3,
                    reorder_out_ms=quantile(sums["out"], q) / 1e3,
                )
            )
    return kernels, [quantile(w, q) for w in walls[len(profiled) :]]
