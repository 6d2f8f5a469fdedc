"""Kernel time of single-layer graphs from ONNX Runtime's profiler, timed in one window.

The graphs run in :func:`~autoprune.latency._measure.time_calls` rounds, pinned, beside any
whole models timed by wall clock in the same window; the profiler's node events give each
graph's kernel time with the per-call cost of ``session.run`` and the layout conversions at
the graph's edges left out (:class:`KernelTiming`).
"""

from __future__ import annotations

import bisect
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from autoprune.core.errors import AutopruneError
from autoprune.latency._layer_graphs import SINK_PREFIX
from autoprune.latency._measure import (
    _check_settings,
    _random_feed,
    _session_options,
    ort_session,
    pinned,
    quantile,
    time_calls,
)


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


def _session(model: str | Path | bytes, threads: int, profile_to: Path | None) -> tuple:
    """A session, and for profiled ones the node groups of its optimized graph."""
    if profile_to is None:
        return ort_session(model, threads), None
    options = _session_options(threads)
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
    ``min_seconds`` have passed (at most :data:`~autoprune.latency._measure.MAX_ROUNDS`), so a
    slowdown of the machine meanwhile touches them alike; the ``q`` quantile of each graph's
    calls is kept.
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
        walls = time_calls(
            [partial(session.run, None, feed) for session, feed, _ in runs],
            warmup=warmup,
            repeats=repeats,
            rounds=rounds,
            min_seconds=min_seconds,
        )
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
