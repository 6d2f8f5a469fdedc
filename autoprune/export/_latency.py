"""Measured wall-clock latency of whole models in ONNX Runtime or PyTorch on this machine.

Per-layer latency tables for the cost model live in :mod:`autoprune.cost`; this module times
complete exported models, for the speed-up rows of the CLI and the benchmarks.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autoprune.errors import AutopruneError
from autoprune.export._onnx import export_onnx

Runtime = Literal["onnxruntime", "torch"]
RUNTIMES: tuple[str, ...] = ("onnxruntime", "torch")
ModelOrPath = nn.Module | str | Path


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one forward pass, in milliseconds, over ``repeats`` timed runs.

    Example:
        >>> stats = LatencyStats.from_samples([1.0, 2.0, 3.0], "torch", 1, 1)
        >>> stats.median_ms, stats.repeats
        (2.0, 3)
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    repeats: int
    runtime: str
    batch_size: int
    threads: int

    @classmethod
    def from_samples(
        cls, samples_ms: Sequence[float], runtime: str, batch_size: int, threads: int
    ) -> LatencyStats:
        """Summarise raw per-run times (ms)."""
        values = np.asarray(samples_ms, dtype=np.float64)
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        return cls(
            median_ms=float(median),
            p10_ms=float(p10),
            p90_ms=float(p90),
            mean_ms=float(values.mean()),
            repeats=int(values.size),
            runtime=runtime,
            batch_size=batch_size,
            threads=threads,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def _time_runs(run: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Call ``run`` ``warmup`` times untimed, then ``repeats`` times timed (ms each)."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def _ort_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ort_samples(
    path: Path, shape: tuple[int, ...], threads: int, warmup: int, repeats: int
) -> list[float]:
    session = _ort_session(path, threads)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}
    return _time_runs(lambda: session.run(None, feed), warmup, repeats)


def _torch_samples(
    model: nn.Module, shape: tuple[int, ...], threads: int, warmup: int, repeats: int
) -> list[float]:
    device = next(model.parameters(), torch.empty(0)).device
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    modes = {module: module.training for module in model.modules()}
    previous_threads = torch.get_num_threads()
    model.eval()

    def run() -> None:
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()

    try:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return _time_runs(run, warmup, repeats)
    finally:
        torch.set_num_threads(previous_threads)
        for module, training in modes.items():
            module.training = training


def _check_args(runtime: str, batch_size: int, threads: int, warmup: int, repeats: int) -> None:
    if runtime not in RUNTIMES:
        raise AutopruneError(f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}")
    for name, value, low in (("batch_size", batch_size, 1), ("threads", threads, 1)):
        if value < low:
            raise AutopruneError(f"{name} {value} must be at least {low}")
    if warmup < 0 or repeats < 1:
        raise AutopruneError(f"warmup {warmup} must be >= 0 and repeats {repeats} >= 1")


def measure_latency(
    model_or_path: ModelOrPath,
    input_shape: Sequence[int],
    *,
    runtime: Runtime,
    batch_size: int = 1,
    threads: int = 1,
    warmup: int = 5,
    repeats: int = 30,
) -> LatencyStats:
    """Time forward passes of a model on random normal input.

    ONNX Runtime runs on the CPU provider with ``threads`` intra-op threads, one inter-op
    thread and all graph optimisations; a module given with ``runtime="onnxruntime"`` is
    exported to a temporary ONNX file first. PyTorch runs under ``torch.inference_mode`` in
    eval mode with ``torch.set_num_threads(threads)``; thread count and training flags are
    restored afterwards.

    Args:
        model_or_path: An ``nn.Module``, or the path of an ONNX file (onnxruntime only).
        input_shape: Shape of one sample without the batch axis, e.g. ``(1, 28, 28)``.
        runtime: ``onnxruntime`` or ``torch``.
        batch_size: Samples per forward pass.
        threads: Intra-op threads.
        warmup: Untimed runs before timing.
        repeats: Timed runs.

    Returns:
        Median, 10th/90th percentile and mean latency per forward pass.
    """
    _check_args(runtime, batch_size, threads, warmup, repeats)
    shape = (batch_size, *(int(d) for d in input_shape))
    if runtime == "torch":
        if not isinstance(model_or_path, nn.Module):
            raise AutopruneError(
                f"runtime 'torch' needs an nn.Module, got {model_or_path!r}; "
                "pass the model itself or use runtime='onnxruntime' for ONNX files"
            )
        samples = _torch_samples(model_or_path, shape, threads, warmup, repeats)
    elif isinstance(model_or_path, nn.Module):
        with tempfile.TemporaryDirectory(prefix="autoprune-latency-") as tmp:
            path = export_onnx(model_or_path, torch.zeros(shape), Path(tmp) / "model.onnx")
            samples = _ort_samples(path, shape, threads, warmup, repeats)
    else:
        path = Path(model_or_path)
        if not path.is_file():
            raise AutopruneError(f"ONNX file {path} does not exist; export it with export_onnx")
        samples = _ort_samples(path, shape, threads, warmup, repeats)
    return LatencyStats.from_samples(samples, runtime, batch_size, threads)


def _onnx_source(model: ModelOrPath, shape: tuple[int, ...], folder: Path, stem: str) -> Path:
    """An ONNX file for ``model``: the path itself, or a dynamic-batch export into ``folder``."""
    if isinstance(model, nn.Module):
        return export_onnx(model, torch.zeros((1, *shape)), folder / f"{stem}.onnx")
    return Path(model)


def compare_latency(
    original: ModelOrPath,
    compressed: ModelOrPath,
    example_shape: Sequence[int],
    *,
    batch_sizes: Sequence[int] = (1, 64),
    runtimes: Sequence[Runtime] = ("onnxruntime", "torch"),
    int8_path: str | Path | None = None,
    threads: int = 1,
    warmup: int = 5,
    repeats: int = 30,
) -> list[dict[str, Any]]:
    """Median latency of the original and the compressed model, side by side.

    Modules are exported to ONNX once (dynamic batch) for the ``onnxruntime`` rows. With
    ``int8_path``, extra ``onnxruntime-int8`` rows compare the fp32 original in ONNX Runtime
    with that int8 model.

    Args:
        original: The uncompressed model (module, or ONNX path for onnxruntime only).
        compressed: The compressed model (module, or ONNX path for onnxruntime only).
        example_shape: Shape of one sample without the batch axis, e.g. ``(1, 28, 28)``.
        batch_sizes: Batch sizes to time.
        runtimes: Runtimes to time, from ``onnxruntime`` and ``torch``.
        int8_path: Optional int8 ONNX file of the compressed model.
        threads: Intra-op threads for every measurement.
        warmup: Untimed runs before each measurement.
        repeats: Timed runs per measurement.

    Returns:
        Rows ``{runtime, batch, original_ms, compressed_ms, speedup, threads}``; times are
        medians, ``speedup = original_ms / compressed_ms``.
    """
    shape = tuple(int(d) for d in example_shape)
    options = {"threads": threads, "warmup": warmup, "repeats": repeats}
    cache: dict[tuple[int, str, int], float] = {}

    def median(source: ModelOrPath, runtime: Runtime, batch: int) -> float:
        key = (id(source), runtime, batch)
        if key not in cache:
            stats = measure_latency(source, shape, runtime=runtime, batch_size=batch, **options)
            cache[key] = stats.median_ms
        return cache[key]

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="autoprune-compare-") as tmp:
        for label, runtime, before, after in _pairs(
            original, compressed, shape, runtimes, int8_path, Path(tmp)
        ):
            for batch in batch_sizes:
                before_ms, after_ms = median(before, runtime, batch), median(after, runtime, batch)
                rows.append(
                    {
                        "runtime": label,
                        "batch": int(batch),
                        "original_ms": before_ms,
                        "compressed_ms": after_ms,
                        "speedup": before_ms / after_ms,
                        "threads": threads,
                    }
                )
    return rows


def _pairs(
    original: ModelOrPath,
    compressed: ModelOrPath,
    shape: tuple[int, ...],
    runtimes: Sequence[Runtime],
    int8_path: str | Path | None,
    folder: Path,
) -> list[tuple[str, Runtime, ModelOrPath, ModelOrPath]]:
    """``(row label, runtime, original source, compressed source)`` for every comparison."""
    pairs: list[tuple[str, Runtime, ModelOrPath, ModelOrPath]] = []
    onnx_original: Path | None = None
    for runtime in runtimes:
        if runtime not in RUNTIMES:
            raise AutopruneError(
                f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}"
            )
        if runtime == "onnxruntime":
            onnx_original = _onnx_source(original, shape, folder, "original")
            pairs.append(
                (
                    runtime,
                    runtime,
                    onnx_original,
                    _onnx_source(compressed, shape, folder, "compressed"),
                )
            )
        else:
            pairs.append((runtime, runtime, original, compressed))
    if int8_path is not None:
        if onnx_original is None:
            onnx_original = _onnx_source(original, shape, folder, "original")
        pairs.append(("onnxruntime-int8", "onnxruntime", onnx_original, Path(int8_path)))
    return pairs
