"""The run directory of one search: config, append-only history and atomic checkpoints.

Layout of ``<runs_dir>/searches/<run_name>/``::

    config.json              the SearchConfig of the run
    history.jsonl            one EpisodeRecord per line, appended, flushed and fsync'ed
    checkpoint.json          pointer to the newest complete checkpoint (replaced atomically)
    checkpoints/ckpt-*/      runner.json, rng.json, evaluator.json, history.json, method/
    result.json              the SearchResult summary once the search finishes

A checkpoint is written into a temporary folder, renamed into place, and only then published
by replacing ``checkpoint.json``; a crash at any point leaves the previous checkpoint intact.
A line torn by a crash at the end of ``history.jsonl`` is dropped when the run is reopened.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoprune.errors import AutopruneError
from autoprune.results import EpisodeRecord

HISTORY = "history.jsonl"
POINTER = "checkpoint.json"
CHECKPOINTS = "checkpoints"


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (so a rename inside it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    """Read a JSON file written by this module."""
    return json.loads(path.read_text())


class RunStore:
    """Files of one search run.

    Example:
        >>> # store = RunStore.create(Path("runs/searches/demo__ddpg__0__20240101-120000"))
        >>> # store.append(record); store.write_checkpoint(10, writer)
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, config: dict[str, Any]) -> RunStore:
        """Make a new run directory; fails when it already exists."""
        if path.exists():
            raise AutopruneError(
                f"run directory {path} already exists; pass resume='{path.name}' to continue "
                "it or choose another run name"
            )
        path.mkdir(parents=True)
        (path / CHECKPOINTS).mkdir()
        write_json_atomic(path / "config.json", config)
        (path / HISTORY).touch()
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunStore:
        """Open an existing run directory (for resuming)."""
        if not (path / "config.json").is_file():
            names = sorted(p.name for p in path.parent.glob("*")) if path.parent.is_dir() else []
            raise AutopruneError(
                f"no search run at {path}; resume one of: {', '.join(names) or '(none yet)'}"
            )
        store = cls(path)
        (path / CHECKPOINTS).mkdir(exist_ok=True)
        (path / HISTORY).touch()
        store._remove_stale_checkpoints()
        return store

    @property
    def saved_config(self) -> dict[str, Any]:
        """The config the run was started with."""
        return read_json(self.path / "config.json")

    # History ------------------------------------------------------------------------------

    def append(self, record: EpisodeRecord) -> None:
        """Append one record durably (flush + fsync) before anyone is told about it."""
        line = json.dumps(record.to_dict(), separators=(",", ":")) + "\n"
        with open(self.path / HISTORY, "a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def read_history(self) -> list[EpisodeRecord]:
        """All complete records; a torn last line (crash mid-write) is cut off the file."""
        path = self.path / HISTORY
        raw = path.read_bytes()
        records: list[EpisodeRecord] = []
        good_end = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                records.append(EpisodeRecord.from_dict(json.loads(line)))
            except (ValueError, KeyError):
                break
            good_end += len(line)
        if good_end < len(raw):
            with open(path, "r+b") as handle:
                handle.truncate(good_end)
                os.fsync(handle.fileno())
        for position, record in enumerate(records):
            if record.index != position:
                raise AutopruneError(
                    f"{path} holds index {record.index} at line {position + 1}; the history is "
                    "corrupt: start a new run instead of resuming this one"
                )
        return records

    # Checkpoints --------------------------------------------------------------------------

    def latest_checkpoint(self) -> Path | None:
        """The folder of the newest complete checkpoint, or None before the first one."""
        pointer = self.path / POINTER
        if not pointer.is_file():
            return None
        folder = self.path / CHECKPOINTS / read_json(pointer)["name"]
        return folder if folder.is_dir() else None

    def write_checkpoint(self, episodes: int, write: Callable[[Path], None]) -> Path:
        """Write a checkpoint with ``write(folder)`` and publish it atomically.

        Args:
            episodes: Number of recorded episodes the checkpoint covers.
            write: Fills the (temporary) folder it is given.
        """
        root = self.path / CHECKPOINTS
        name = f"ckpt-{episodes:06d}-{time.time_ns()}"
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{name}-"))
        try:
            write(tmp)
            _fsync_tree(tmp)
            os.replace(tmp, root / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(root)
        write_json_atomic(self.path / POINTER, {"name": name, "episodes": episodes})
        for old in root.iterdir():
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return root / name

    def _remove_stale_checkpoints(self) -> None:
        latest = self.latest_checkpoint()
        for folder in (self.path / CHECKPOINTS).iterdir():
            if latest is None or folder.name != latest.name:
                shutil.rmtree(folder, ignore_errors=True)

    def write_result(self, summary: dict[str, Any]) -> None:
        """Write ``result.json`` (the final summary)."""
        write_json_atomic(self.path / "result.json", summary)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))
