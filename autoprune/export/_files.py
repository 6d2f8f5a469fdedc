"""Atomic file writes for the exporters: the helpers of :mod:`autoprune.system.atomic_dir`."""

from __future__ import annotations

from pathlib import Path

from autoprune.system.atomic_dir import scratch_dir, write_atomic

scratch_dir_beside = scratch_dir
"""A temporary folder next to a path, removed when the block ends (see :func:`scratch_dir`)."""


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling, a flush and a rename."""
    write_atomic(path, data)
