"""The run directory of one search: config, append-only history and atomic checkpoints.

Layout of ``<runs_dir>/searches/<run_name>/``::

    writer.lock              flock'ed by the one process writing the run; holds its PID
    config.json              the SearchConfig of the run
    history.jsonl            one EpisodeRecord per line, appended, flushed and fsync'ed
    checkpoint.json          pointer to the newest complete checkpoint (replaced atomically)
    checkpoints/ckpt-*/      runner.json, rng.json, evaluator.json, history.json, method/
    tracking.json            the MLflow run that a resume continues (written by the CLI)
    result.json              the SearchResult summary once the search finishes

One writer per run: :meth:`RunStore.create` and :meth:`RunStore.open` lock ``writer.lock``
(the OS releases it when the process ends, even by ``kill -9``), and a second process is
refused with the PID of the first. A checkpoint is written into a temporary folder, renamed
into place, and only then published by replacing ``checkpoint.json``; a crash at any point
leaves the previous checkpoint intact. ``history.jsonl`` is never cut, except for a line torn
by a crash at its very end, which is dropped on reopening after a copy of the file is kept
(see :mod:`agents._history`).
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

from agents._history import drop_torn_tail, fsync_path, scan_history
from autoprune.core.bounded import loads_json
from autoprune.core.errors import AutopruneError
from autoprune.core.results import EpisodeRecord
from autoprune.system.database_url import drop_passwords, without_passwords
from autoprune.system.locks import FileLock
from autoprune.system.paths import child_path

HISTORY = "history.jsonl"
POINTER = "checkpoint.json"
CHECKPOINTS = "checkpoints"
LOCK = "writer.lock"
TRACKING = "tracking.json"


class RunExists(AutopruneError):
    """A new run's directory exists already."""


def live_writer(path: Path) -> int | None:
    """PID of another live process writing the run at ``path`` (0 if unreadable), else None."""
    if not (path / LOCK).is_file():
        return None
    lock = FileLock(path / LOCK)
    if lock.acquire(wait=False):
        lock.release()
        return None
    return lock.holder() or 0


def existing_run_message(path: Path) -> str:
    """Why a new run cannot take ``path``, with advice that never points at a live run."""
    pid = live_writer(path)
    if pid is not None:
        return (
            f"run '{path.name}' already exists under {path.parent} and is running under "
            f"{_process(pid)}; choose another run name, or wait for it to finish"
        )
    return (
        f"run '{path.name}' already exists under {path.parent}; pass resume='{path.name}' to "
        "continue it or choose another run name"
    )


def _process(pid: int) -> str:
    return f"PID {pid}" if pid else "another process"


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
    fsync_path(path.parent)


def read_json(path: Path) -> Any:
    """Read a JSON file written by this module; a damaged one is a one-line error."""
    fix = (
        "restore it from a backup, or start a new search (the finished episodes stay "
        "readable in history.jsonl)"
    )
    return loads_json(path.read_bytes(), f"run file {path}", fix, problem="is damaged")


class RunStore:
    """Files of one search run, locked for this process while the store is open.

    Example:
        >>> # with RunStore.create(Path("runs/searches/demo__ddpg__0__20240101-120000"), {}) as s:
        >>> #     s.append(record); s.write_checkpoint(10, writer)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.resumed = False
        """Whether the run was reopened (:meth:`open`) rather than created."""
        self._lock = FileLock(path / LOCK)

    @classmethod
    def create(cls, path: Path, config: dict[str, Any]) -> RunStore:
        """Make and lock a new run directory (atomically); fails when it already exists."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            raise RunExists(existing_run_message(path)) from None
        store = cls(path)
        store._lock.acquire(wait=True)  # nobody else locks a run before config.json exists
        (path / CHECKPOINTS).mkdir()
        (path / HISTORY).touch()
        write_json_atomic(path / "config.json", without_passwords(config))  # never stored
        return store

    @classmethod
    def open(cls, path: Path) -> RunStore:
        """Open and lock an existing run directory (for resuming).

        Raises:
            AutopruneError: when there is no run at ``path``, or another live process is
                writing it (the message names its PID).
        """
        if not (path / "config.json").is_file():
            names = sorted(p.name for p in path.parent.glob("*")) if path.parent.is_dir() else []
            raise AutopruneError(
                f"no search run at {path}; resume one of: {', '.join(names) or '(none yet)'}"
            )
        store = cls(path)
        store.resumed = True
        if not store._lock.acquire(wait=False):
            pid = store._lock.holder() or 0
            raise AutopruneError(
                f"run '{path.name}' is being written by {_process(pid)} (a search is still "
                f"running); wait for it to finish, or stop it{f' (kill {pid})' if pid else ''} "
                "and resume again"
            )
        (path / CHECKPOINTS).mkdir(exist_ok=True)
        (path / HISTORY).touch()
        store._remove_stale_checkpoints()
        return store

    def close(self) -> None:
        """Release this process's lock on the run (the files stay as they are)."""
        self._lock.release()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        """All records of ``history.jsonl``.

        A last line torn by a crash is dropped from the file (while this process holds the
        run), after a copy of the file is kept as ``history.jsonl.torn-<time>``.

        Raises:
            AutopruneError: for damage before the last line, naming the line; the file is
                left unchanged.
        """
        path = self.path / HISTORY
        scan = scan_history(path)
        if scan.torn_at is not None and self._lock.held:
            drop_torn_tail(path, scan.torn_at)
        return scan.records

    # Tracking -----------------------------------------------------------------------------

    def tracking_run(self) -> dict[str, str] | None:
        """The MLflow run recorded by :meth:`save_tracking_run` (``run_id``, ``tracking_uri``)."""
        path = self.path / TRACKING
        return read_json(path) if path.is_file() else None

    def save_tracking_run(self, run_id: str, tracking_uri: str) -> None:
        """Record the MLflow run of this search, so that a resume continues it."""
        uri = drop_passwords(tracking_uri)  # the driver reads PGPASSWORD / ~/.pgpass itself
        write_json_atomic(self.path / TRACKING, {"run_id": run_id, "tracking_uri": uri})

    # Checkpoints --------------------------------------------------------------------------

    def latest_checkpoint(self) -> Path | None:
        """The folder of the newest complete checkpoint, or None before the first one."""
        folder = pointed_checkpoint(self.path)
        return folder if folder is not None and folder.is_dir() else None

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
        fsync_path(root)
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
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))


def pointed_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint folder the run's pointer names (None without a pointer); a damaged
    pointer, or one naming a path out of ``checkpoints/``, is a one-line error."""
    pointer = run_dir / POINTER
    if not pointer.is_file():
        return None
    target = read_json(pointer)
    name = target.get("name") if isinstance(target, dict) else None
    if not isinstance(name, str):
        raise AutopruneError(
            f"run file {pointer} is damaged (it names no checkpoint); restore it from a "
            "backup, or start a new search"
        )
    return child_path(run_dir / CHECKPOINTS, name, f"checkpoint name in {pointer}")
