"""Per-layer latency lookup table, measured on demand and cached on disk as JSON.

One cache file per hardware/runtime fingerprint (CPU model, machine, runtime and its
version, threads, batch size, statistic) lives under the cache folder as
``latency-<hash>.json``, so tables are reused across searches on the same machine and never
mixed between machines. It holds the layer timings and, per model, the layer-sum line fitted
against whole-model measurements. Writes are atomic (temporary file renamed into place),
merge entries written meanwhile by another process and record a content hash; a table that
fails its check on read is kept aside and measured again.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.cost import MeasurementSettings
from autoprune.latency._kernels import KernelTiming, measure_together
from autoprune.latency._layer_graphs import LayerKey, layer_onnx, layer_torch, overhead_onnx
from autoprune.latency._layer_sum_line import LayerSumLine
from autoprune.latency._measure import measure_onnx_latency, measure_torch_latency
from autoprune.system.atomic_dir import write_atomic
from autoprune.system.verified import DIGEST_KEY, CacheWarning, set_aside, sha256_of_bytes

LUT_FORMAT = 5
"""Bump when the single-layer graphs or the key change, so old tables are not reused."""

SLOW_TOLERANCE = 1.10
"""A window whose probe ran this much slower than the fastest one seen was a busy machine."""

MAX_ATTEMPTS = 3
"""Tries of a measurement window on a busy machine; the fastest is kept."""

RETRY_PAUSE_S = 1.0
"""Pause before measuring a window again."""


MeasureFn = Callable[[Sequence[LayerKey], MeasurementSettings], list[KernelTiming]]
OverheadFn = Callable[[MeasurementSettings, int], float]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, or what :mod:`platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def runtime_fingerprint(settings: MeasurementSettings, batch_size: int = 1) -> dict[str, Any]:
    """What a measurement depends on besides the layer itself."""
    version = ort.__version__ if settings.runtime == "onnxruntime" else torch.__version__
    return {
        "format": LUT_FORMAT,
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "runtime": settings.runtime,
        "runtime_version": version,
        "threads": settings.threads,
        "batch_size": batch_size,
        "quantile": settings.quantile,
    }


def probe_key(batch_size: int = 1) -> LayerKey:
    """A fixed layer timed with every batch: how fast the machine is during the batch."""
    return LayerKey("conv", 64, 64, (3, 3), (1, 1), 1, (14, 14), (1, 1, 1, 1), "fp32", batch_size)


def _timing_args(settings: MeasurementSettings) -> dict[str, Any]:
    """Keyword arguments of the single-graph timers (:func:`measure_onnx_latency`, ...)."""
    return {"threads": settings.threads, "warmup": settings.warmup, "repeats": settings.repeats}


def window_args(settings: MeasurementSettings, batch_size: int = 1) -> dict[str, Any]:
    """Keyword arguments of :func:`~autoprune.latency._kernels.measure_together`."""
    return {
        **_timing_args(settings),
        "rounds": settings.rounds,
        "min_seconds": settings.min_seconds,
        "q": settings.quantile,
        "batch_size": batch_size,
    }


def measure_layers(keys: Sequence[LayerKey], settings: MeasurementSettings) -> list[KernelTiming]:
    """Time the single-layer graphs of ``keys`` together (one window of interleaved rounds).

    ONNX Runtime graphs are timed with its profiler: the layer, its epilogue and the layout
    conversions at the graph's edges, without the per-call cost. PyTorch modules are timed by
    wall clock, less the cost of calling an empty module. The batch size is the keys' own.
    """
    batch_size = keys[0].batch_size if keys else 1
    if settings.runtime == "torch":
        empty = measure_overhead(settings, batch_size)
        return [
            KernelTiming(
                max(
                    measure_torch_latency(layer_torch(k), k.input_shape, **_timing_args(settings))
                    - empty,
                    0.0,
                )
            )
            for k in keys
        ]
    graphs = [layer_onnx(k) for k in keys]
    kernels, _ = measure_together(graphs, **window_args(settings, batch_size))
    return kernels


def measure_overhead(settings: MeasurementSettings, batch_size: int = 1) -> float:
    """Ms of one call of a near-empty graph: the fixed cost of a forward pass."""
    shape = (batch_size, 1)
    if settings.runtime == "torch":
        return measure_torch_latency(nn.Identity(), shape, **_timing_args(settings))
    return measure_onnx_latency(overhead_onnx(batch_size), shape, **_timing_args(settings))


class LatencyTable:
    """Measured single-layer timings, filled on demand and cached per fingerprint.

    Args:
        settings: How to time layers (a measured profile's ``measurement``).
        cache_dir: Folder of the JSON cache; ``None`` keeps the table in memory only.
        batch_size: Samples per timed call (the profile's ``batch_size``).
        measure: Times a batch of layers (injectable for tests).
        measure_fixed: Times the fixed per-call overhead at ``batch_size`` (injectable for
            tests).
        pause: Waits between tries of a batch measured on a busy machine.

    Example:
        >>> fake = lambda keys, s: [KernelTiming(1.5) for _ in keys]
        >>> table = LatencyTable(MeasurementSettings(repeats=3), measure=fake,
        ...                      measure_fixed=lambda s, batch_size: 0.5)
        >>> key = LayerKey("linear", 8, 4, (1, 1), (1, 1), 1, (1, 1), (0, 0, 0, 0), "fp32", 1)
        >>> table.latency_ms(key), table.overhead_ms, table.measurements
        (1.5, 0.5, 2)
    """

    def __init__(
        self,
        settings: MeasurementSettings,
        cache_dir: Path | None = None,
        *,
        batch_size: int = 1,
        measure: MeasureFn = measure_layers,
        measure_fixed: OverheadFn = measure_overhead,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.fingerprint = runtime_fingerprint(settings, batch_size)
        digest = hashlib.sha256(json.dumps(self.fingerprint, sort_keys=True).encode())
        self.fingerprint_id = digest.hexdigest()[:16]
        self.path = None if cache_dir is None else Path(cache_dir) / self.file_name
        self.measurements = 0
        """How many timings this table has taken (layers and overhead)."""
        self._measure = measure
        self._measure_fixed = measure_fixed
        self._entries: dict[str, KernelTiming] = {}
        self._overhead: float | None = None
        self._lines: dict[str, LayerSumLine] = {}
        self.reference_ms: float | None = None
        """The fastest time of the probe layer seen: how fast the idle machine is."""
        self._pause = pause
        if self.path is not None and self.path.is_file():
            self._load(self.path)

    @property
    def file_name(self) -> str:
        """Name of this fingerprint's cache file."""
        return f"latency-{self.fingerprint_id}.json"

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._entries

    def ensure(self, keys: Iterable[LayerKey]) -> None:
        """Measure every key not in the table yet (together), and the overhead; save once.

        A fixed probe layer is timed in the same window. When it runs more than
        :data:`SLOW_TOLERANCE` slower than the fastest probe this table has seen, the machine
        was busy meanwhile: the batch is measured again after a pause (at most
        :data:`MAX_ATTEMPTS` tries) and the try with the fastest probe is kept, so entries
        measured under load do not poison the cache.
        """
        missing = {str(key): key for key in keys if str(key) not in self._entries}
        if missing:
            probe = probe_key(self.batch_size)
            best: list[KernelTiming] | None = None
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    self._pause(RETRY_PAUSE_S)
                timings = self._measure([probe, *missing.values()], self.settings)
                if len(timings) != len(missing) + 1:
                    raise AutopruneError(
                        f"the layer timer returned {len(timings)} timings for "
                        f"{len(missing) + 1} layers; it must return one per key"
                    )
                if best is None or timings[0].kernel_ms < best[0].kernel_ms:
                    best = timings
                if not self.is_slow(timings[0].kernel_ms):
                    break
            assert best is not None
            self.note_probe(best[0].kernel_ms)
            self._entries.update(zip(missing, best[1:], strict=True))
            self.measurements += len(missing)
        need_overhead = self._overhead is None
        if need_overhead:
            self._overhead = float(self._measure_fixed(self.settings, self.batch_size))
            self.measurements += 1
        if missing or need_overhead:
            self.save()

    def is_slow(self, probe_ms: float) -> bool:
        """Whether a window whose probe took ``probe_ms`` ran on a busy machine."""
        return self.reference_ms is not None and probe_ms > self.reference_ms * SLOW_TOLERANCE

    def note_probe(self, probe_ms: float) -> None:
        """Remember the fastest probe seen: the speed of an idle machine."""
        if probe_ms > 0 and (self.reference_ms is None or probe_ms < self.reference_ms):
            self.reference_ms = probe_ms

    def timing(self, key: LayerKey) -> KernelTiming:
        """Measured timing of ``key``'s single-layer graph (measured if new)."""
        self.ensure([key])
        return self._entries[str(key)]

    def timings(self, keys: Sequence[LayerKey]) -> list[KernelTiming]:
        """Measured timings of ``keys`` in order (the new ones measured together first)."""
        self.ensure(keys)
        return [self._entries[str(key)] for key in keys]

    def latency_ms(self, key: LayerKey) -> float:
        """Measured ms of ``key``'s layer and epilogue, edge layout conversions excluded."""
        return self.timing(key).kernel_ms

    @property
    def overhead_ms(self) -> float:
        """Measured ms of one call of a near-empty graph (measured once)."""
        self.ensure([])
        assert self._overhead is not None
        return self._overhead

    def line(self, model_id: str) -> LayerSumLine | None:
        """The layer-sum line stored for the model with this id, if any."""
        return self._lines.get(model_id)

    def set_line(self, model_id: str, line: LayerSumLine) -> None:
        """Store (and save) the layer-sum line of one model (saved under the key ``calibrations``,
        the name of earlier versions, so that their tables still load)."""
        self._lines[model_id] = line
        self.save()

    def _load(self, path: Path) -> None:
        data = self._read(path)
        if data is None:
            return
        self._entries = data["entries"]
        self._overhead = data["overhead_ms"]
        self._lines = data["calibrations"]
        self.reference_ms = data["reference_ms"]

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The table on disk, or None when it fails its check: then it is kept aside
        (``NAME.damaged-<time>``) with a one-line :class:`CacheWarning` and measured again."""
        try:
            data = json.loads(path.read_text())
            problem = _content_problem(data, self.fingerprint)
            parsed = None if problem else _parse(data)
        except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
            problem, parsed = f"unreadable: {type(exc).__name__}", None
        if parsed is None:
            kept = set_aside(path)
            warnings.warn(
                f"latency cache {path} is damaged ({problem}); its layers are measured again "
                f"(the damaged file is kept as {kept.name if kept else path.name})",
                CacheWarning,
                stacklevel=3,
            )
        return parsed

    def save(self) -> None:
        """Write the table atomically, merged with entries another process saved meanwhile."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        disk = self._read(self.path) if self.path.is_file() else None
        if disk is not None:
            if disk["reference_ms"] is not None:
                self.note_probe(disk["reference_ms"])
            self._entries = {**disk["entries"], **self._entries}
            self._lines = {**disk["calibrations"], **self._lines}
            if self._overhead is None:
                self._overhead = disk["overhead_ms"]
        document: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "reference_ms": self.reference_ms,
            "overhead_ms": self._overhead,
            "calibrations": {k: asdict(v) for k, v in sorted(self._lines.items())},
            "entries": {k: asdict(v) for k, v in sorted(self._entries.items())},
        }
        document[DIGEST_KEY] = _digest(document)
        write_atomic(self.path, json.dumps(document, indent=1))


def _digest(document: dict[str, Any]) -> str:
    """The content hash of a table document (its canonical JSON, the hash itself left out)."""
    body = {k: v for k, v in document.items() if k != DIGEST_KEY}
    return sha256_of_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _content_problem(data: Any, fingerprint: dict[str, Any]) -> str | None:
    """What is wrong with a table read from disk, or None (a table written before hashes
    were recorded has none to check)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if DIGEST_KEY in data and data[DIGEST_KEY] != _digest(data):
        return "its content hash differs from the one recorded at save"
    if data.get("fingerprint") != fingerprint:
        return "it records another machine or runtime than its file name"
    return None


def _parse(data: dict[str, Any]) -> dict[str, Any]:
    """Timings, lines and reference times of a checked table document."""
    return {
        "entries": {str(k): KernelTiming(**v) for k, v in data["entries"].items()},
        "calibrations": {
            str(k): LayerSumLine(**v) for k, v in data.get("calibrations", {}).items()
        },
        "overhead_ms": None if data.get("overhead_ms") is None else float(data["overhead_ms"]),
        "reference_ms": None if data.get("reference_ms") is None else float(data["reference_ms"]),
    }
