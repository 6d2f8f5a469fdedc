"""Side-by-side measured latency of an original and a compressed model (speed-up rows)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoprune.cost import Runtime
from autoprune.export import export_onnx
from autoprune.latency._measure import pinned, quantile, time_calls
from autoprune.latency._model_timing import ModelOrPath, check_timing_args, runners

Comparison = tuple[str, Runtime, ModelOrPath, ModelOrPath]
"""``(row label, runtime, original, compressed)``."""


def _as_onnx(model: ModelOrPath, shape: tuple[int, ...], path: Path) -> ModelOrPath:
    """Export a module once (dynamic batch) so every batch size reuses the file."""
    if isinstance(model, nn.Module):
        return export_onnx(model, torch.zeros((1, *shape)), path)
    return model


def _comparisons(
    original: ModelOrPath,
    compressed: ModelOrPath,
    shape: tuple[int, ...],
    runtimes: Sequence[Runtime],
    int8_path: str | Path | None,
    folder: Path,
) -> list[Comparison]:
    comparisons: list[Comparison] = []
    onnx_original: ModelOrPath | None = None
    for runtime in runtimes:
        if runtime == "onnxruntime":
            onnx_original = _as_onnx(original, shape, folder / "original.onnx")
            onnx_compressed = _as_onnx(compressed, shape, folder / "compressed.onnx")
            comparisons.append((runtime, runtime, onnx_original, onnx_compressed))
        else:
            comparisons.append((runtime, runtime, original, compressed))
    if int8_path is not None:
        if onnx_original is None:
            onnx_original = _as_onnx(original, shape, folder / "original.onnx")
        comparisons.append(("onnxruntime-int8", "onnxruntime", onnx_original, Path(int8_path)))
    return comparisons


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

    The two models of a row are timed alternately, run by run (pinned to ``threads`` CPUs),
    so background load affects both alike. Modules are exported to ONNX once for the
    ``onnxruntime`` rows. With ``int8_path``, ``onnxruntime-int8`` rows compare the fp32
    original with that int8 model.

    Args:
        original: The uncompressed model (module, or ONNX path for onnxruntime only).
        compressed: The compressed model (module, or ONNX path for onnxruntime only).
        example_shape: Shape of one sample without the batch axis, e.g. ``(1, 28, 28)``.
        batch_sizes: Batch sizes to time.
        runtimes: Runtimes to time, from ``onnxruntime`` and ``torch``.
        int8_path: Optional int8 ONNX file of the compressed model.
        threads: Intra-op threads for every measurement.
        warmup: Untimed runs of each model before each row.
        repeats: Timed runs of each model per row.

    Returns:
        Rows ``{runtime, batch, original_ms, compressed_ms, speedup, threads}``; times are
        medians and ``speedup = original_ms / compressed_ms``.
    """
    for runtime in runtimes:
        for batch in batch_sizes:
            check_timing_args(runtime, batch, threads, warmup, repeats)
    sample_shape = tuple(int(d) for d in example_shape)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="autoprune-compare-") as tmp:
        comparisons = _comparisons(
            original, compressed, sample_shape, runtimes, int8_path, Path(tmp)
        )
        for label, runtime, before, after in comparisons:
            for batch in batch_sizes:
                shape = (int(batch), *sample_shape)
                with pinned(threads), runners([before, after], shape, runtime, threads) as runs:
                    samples = time_calls(runs, warmup=warmup, repeats=1, rounds=repeats)
                before_ms, after_ms = (quantile(times, 0.5) for times in samples)
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
