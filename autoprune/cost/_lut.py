"""Per-layer latency lookup table, measured on demand and cached on disk as JSON.

One cache file per hardware/runtime fingerprint (CPU model, machine, runtime and its
version, threads, batch size) lives under the cache folder as ``latency-<hash>.json``, so
tables are reused across searches on the same machine and never mixed between machines.
Writes are atomic (temporary file renamed into place) and merge entries written meanwhile
by another process.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch
from torch import nn

from autoprune.cost._layer_graphs import LayerKey, layer_onnx, layer_torch, overhead_onnx
from autoprune.cost._measure import measure_onnx_latency, measure_torch_latency
from autoprune.cost._profile import HardwareProfile, Runtime
from autoprune.errors import AutopruneError

LUT_FORMAT = 1
"""Bump when the single-layer graphs or the key change, so old tables are not reused."""


@dataclass(frozen=True)
class RuntimeSettings:
    """How layers are timed.

    Attributes:
        runtime: ``onnxruntime`` (fp32 or int8 QDQ graphs) or ``torch`` (fp32 eager).
        threads: Intra-op threads.
        batch_size: Samples per timed call.
        warmup: Untimed calls before timing.
        repeats: Timed calls; the median is kept.
    """

    runtime: Runtime = "onnxruntime"
    threads: int = 1
    batch_size: int = 1
    warmup: int = 3
    repeats: int = 10

    @classmethod
    def from_profile(cls, profile: HardwareProfile) -> RuntimeSettings:
        """The settings a measured profile declares."""
        return cls(
            runtime=profile.runtime,
            threads=profile.threads,
            batch_size=profile.batch_size,
            warmup=profile.warmup,
            repeats=profile.repeats,
        )


MeasureFn = Callable[[LayerKey, RuntimeSettings], float]
OverheadFn = Callable[[RuntimeSettings], float]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, or what :mod:`platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def runtime_fingerprint(settings: RuntimeSettings) -> dict[str, Any]:
    """What a measurement depends on besides the layer itself."""
    version = ort.__version__ if settings.runtime == "onnxruntime" else torch.__version__
    return {
        "format": LUT_FORMAT,
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "runtime": settings.runtime,
        "runtime_version": version,
        "threads": settings.threads,
        "batch_size": settings.batch_size,
    }


def measure_layer(key: LayerKey, settings: RuntimeSettings) -> float:
    """Median ms of one call of the single-layer graph for ``key``."""
    timing = {"threads": settings.threads, "warmup": settings.warmup, "repeats": settings.repeats}
    if settings.runtime == "torch":
        return measure_torch_latency(layer_torch(key), key.input_shape, **timing)
    return measure_onnx_latency(layer_onnx(key), key.input_shape, **timing)


def measure_overhead(settings: RuntimeSettings) -> float:
    """Median ms of one call of a near-empty graph: the fixed cost of a forward pass."""
    timing = {"threads": settings.threads, "warmup": settings.warmup, "repeats": settings.repeats}
    shape = (settings.batch_size, 1)
    if settings.runtime == "torch":
        return measure_torch_latency(nn.Identity(), shape, **timing)
    return measure_onnx_latency(overhead_onnx(settings.batch_size), shape, **timing)


class LatencyTable:
    """Measured single-layer latencies, filled on demand and cached per fingerprint.

    Args:
        settings: How to time layers.
        cache_dir: Folder of the JSON cache; ``None`` keeps the table in memory only.
        measure: Times one layer (injectable for tests).
        measure_fixed: Times the fixed per-call overhead (injectable for tests).

    Example:
        >>> table = LatencyTable(RuntimeSettings(repeats=3), measure=lambda key, s: 1.5,
        ...                      measure_fixed=lambda s: 0.5)
        >>> key = LayerKey("linear", 8, 4, (1, 1), (1, 1), 1, (1, 1), (0, 0, 0, 0), "fp32", 1)
        >>> table.latency_ms(key), table.overhead_ms, table.measurements
        (1.5, 0.5, 2)
    """

    def __init__(
        self,
        settings: RuntimeSettings,
        cache_dir: Path | None = None,
        *,
        measure: MeasureFn = measure_layer,
        measure_fixed: OverheadFn = measure_overhead,
    ) -> None:
        self.settings = settings
        self.fingerprint = runtime_fingerprint(settings)
        digest = hashlib.sha256(json.dumps(self.fingerprint, sort_keys=True).encode())
        self.fingerprint_id = digest.hexdigest()[:16]
        self.path = None if cache_dir is None else Path(cache_dir) / self.file_name
        self.measurements = 0
        """How many timings this table has taken (layers and overhead)."""
        self._measure = measure
        self._measure_fixed = measure_fixed
        self._entries: dict[str, float] = {}
        self._overhead: float | None = None
        if self.path is not None and self.path.is_file():
            self._entries, self._overhead = self._read(self.path)

    @property
    def file_name(self) -> str:
        """Name of this fingerprint's cache file."""
        return f"latency-{self.fingerprint_id}.json"

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._entries

    def ensure(self, keys: Iterable[LayerKey]) -> None:
        """Measure every key not in the table yet (and the overhead), then save once."""
        missing = {str(key): key for key in keys if str(key) not in self._entries}
        for name, key in missing.items():
            self._entries[name] = float(self._measure(key, self.settings))
            self.measurements += 1
        need_overhead = self._overhead is None
        if need_overhead:
            self._overhead = float(self._measure_fixed(self.settings))
            self.measurements += 1
        if missing or need_overhead:
            self.save()

    def latency_ms(self, key: LayerKey) -> float:
        """Measured ms of one call of ``key``'s single-layer graph (measured if new)."""
        self.ensure([key])
        return self._entries[str(key)]

    @property
    def overhead_ms(self) -> float:
        """Measured ms of one call of a near-empty graph (measured once)."""
        self.ensure([])
        assert self._overhead is not None
        return self._overhead

    def _read(self, path: Path) -> tuple[dict[str, float], float | None]:
        try:
            data = json.loads(path.read_text())
            entries = {str(k): float(v) for k, v in data["entries"].items()}
            overhead = data.get("overhead_ms")
            same = data["fingerprint"] == self.fingerprint
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise AutopruneError(
                f"latency cache {path} is corrupt; delete it and it will be measured again"
            ) from None
        if not same:
            raise AutopruneError(
                f"latency cache {path} was measured for another machine or runtime; "
                "delete it or use another cache folder"
            )
        return entries, None if overhead is None else float(overhead)

    def save(self) -> None:
        """Write the table atomically, merged with entries another process saved meanwhile."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            disk, disk_overhead = self._read(self.path)
            self._entries = {**disk, **self._entries}
            if self._overhead is None:
                self._overhead = disk_overhead
        document = {
            "fingerprint": self.fingerprint,
            "overhead_ms": self._overhead,
            "entries": dict(sorted(self._entries.items())),
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".latency-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
