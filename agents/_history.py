"""Reading ``history.jsonl``, the append-only record of a search, without ever cutting it.

Line ``n`` holds the record of episode ``n - 1``. Reading changes no byte of the file, with
one exception: a last line that a crash tore (no newline at its end, or not a record) may be
dropped, and only after the whole file was copied next to it as
``history.jsonl.torn-<YYYYmmdd-HHMMSS>``. Damage anywhere else (an unreadable line, a
missing or repeated episode) is reported with its line number and the file is left as it is.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from autoprune.core.errors import AutopruneError
from autoprune.core.results import EpisodeRecord
from autoprune.system.paths import aside_path

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryScan:
    """What :func:`scan_history` found.

    Attributes:
        records: The records of every complete line, in order.
        torn_at: Byte offset of a torn last line (None when the file ends cleanly).
    """

    records: list[EpisodeRecord]
    torn_at: int | None = None


def scan_history(path: Path) -> HistoryScan:
    """Parse ``path`` without changing it.

    Raises:
        AutopruneError: for an unreadable line before the last one, or a line whose episode
            index is not its line number minus one.

    Example:
        >>> # scan_history(Path("runs/searches/RUN/history.jsonl")).records[-1].index
    """
    lines = path.read_bytes().split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: bytes after the last newline
    records: list[EpisodeRecord] = []
    offset = 0
    for number, line in enumerate(complete, start=1):
        record = _parse(line)
        if record is None:
            if number == len(complete) and not tail:
                return HistoryScan(records, torn_at=offset)  # an unreadable last line
            raise AutopruneError(
                f"{path} line {number} is damaged (not an episode record); the file was left "
                f"unchanged: repair or remove line {number} by hand and resume again, or start "
                "a new search"
            )
        if record.index != number - 1:
            raise AutopruneError(
                f"{path} line {number} holds episode {record.index}, expected {number - 1} "
                "(a record is missing or repeated); the file was left unchanged: start a new "
                "search, or repair the file by hand and resume again"
            )
        records.append(record)
        offset += len(line) + 1
    return HistoryScan(records, torn_at=offset if tail else None)


def drop_torn_tail(path: Path, torn_at: int) -> Path:
    """Cut ``path`` at ``torn_at`` after copying it to ``<name>.torn-<time>``; the copy."""
    copy = aside_path(path, "torn")
    shutil.copyfile(path, copy)
    for kept in (copy, path.parent):
        fsync_path(kept)
    with open(path, "r+b") as handle:
        handle.truncate(torn_at)
        os.fsync(handle.fileno())
    _log.warning(
        "%s: dropped a last line torn by a crash; the file as it was is kept in %s",
        path,
        copy.name,
    )
    return copy


def _parse(line: bytes) -> EpisodeRecord | None:
    try:
        return EpisodeRecord.from_dict(json.loads(line))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # RecursionError: a line nested thousands of levels deep


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries (so a rename inside it survives a
    crash), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
