"""Measured wall-clock latency of deployed models in ONNX Runtime or PyTorch on this machine.

This times complete models, for ``apply``, the speed-up rows of the CLI and the benchmarks,
with the same timer as the lookup table (:func:`~autoprune.latency._measure.time_calls`,
pinned to ``threads`` CPUs). When several models are compared, their timed runs are
interleaved (A, B, A, B, ...) so that load from other processes hits all of them alike.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.cost import Runtime
from autoprune.export import export_onnx
from autoprune.latency._measure import ort_session, pinned, time_calls, torch_settings

RUNTIMES: tuple[str, ...] = get_args(Runtime)
ModelOrPath = nn.Module | str | Path
Runner = Callable[[], object]


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


def _ort_runner(path: Path, shape: tuple[int, ...], threads: int) -> Runner:
    session = ort_session(path, threads)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}
    return lambda: session.run(None, feed)


def _torch_runner(model: nn.Module, shape: tuple[int, ...]) -> Runner:
    device = next(model.parameters(), torch.empty(0)).device
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)

    def run() -> None:
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()

    return run


def _onnx_file(source: ModelOrPath) -> Path:
    path = Path(source)  # type: ignore[arg-type]
    if not path.is_file():
        raise AutopruneError(f"ONNX file {path} does not exist; export it with export_onnx")
    return path


@contextlib.contextmanager
def runners(
    sources: Sequence[ModelOrPath], shape: tuple[int, ...], runtime: Runtime, threads: int
) -> Iterator[list[Runner]]:
    """Ready forward passes of each source on a random batch of ``shape``, settings applied.

    For ``onnxruntime``, modules are exported to a temporary ONNX file first; ``torch``
    needs modules. Enter it inside :func:`~autoprune.latency._measure.pinned` so the
    runtimes' threads start pinned.
    """
    if runtime == "torch":
        for source in sources:
            if not isinstance(source, nn.Module):
                raise AutopruneError(
                    f"runtime 'torch' needs an nn.Module, got {source!r}; "
                    "pass the model itself or use runtime='onnxruntime' for ONNX files"
                )
        with torch_settings(sources, threads):  # type: ignore[arg-type]
            yield [_torch_runner(model, shape) for model in sources]  # type: ignore[arg-type]
        return
    with tempfile.TemporaryDirectory(prefix="autoprune-latency-") as tmp:
        paths = [
            export_onnx(source, torch.zeros(shape), Path(tmp) / f"model{index}.onnx")
            if isinstance(source, nn.Module)
            else _onnx_file(source)
            for index, source in enumerate(sources)
        ]
        yield [_ort_runner(path, shape, threads) for path in paths]


def check_timing_args(
    runtime: str, batch_size: int, threads: int, warmup: int, repeats: int
) -> None:
    """Raise :class:`AutopruneError` for an unknown runtime or non-positive counts."""
    if runtime not in RUNTIMES:
        raise AutopruneError(f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}")
    for name, value in (("batch_size", batch_size), ("threads", threads)):
        if value < 1:
            raise AutopruneError(f"{name} {value} must be at least 1")
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
    restored afterwards. The measuring thread is pinned to ``threads`` CPUs meanwhile.

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
    check_timing_args(runtime, batch_size, threads, warmup, repeats)
    shape = (batch_size, *(int(d) for d in input_shape))
    with pinned(threads), runners([model_or_path], shape, runtime, threads) as runs:
        samples = time_calls(runs, warmup=warmup, repeats=repeats)[0]
    return LatencyStats.from_samples(samples, runtime, batch_size, threads)
