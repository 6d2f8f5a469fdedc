"""All-or-nothing outputs: a reader sees the old file or folder, or the complete new one.

Everything is written into a temporary sibling (same file system, so a rename moves it),
flushed to disk, then renamed over the target. A folder is swapped whole: the entries of the
old folder that the new one does not replace (the user's own files) are hard-linked into
the new folder first, so nothing the user had is lost, and the old folder is removed only
after the new one is in place. Temporaries carry the writer's PID; one left by a killed
writer is removed by the next write of the same target, never one of a live process and
never anything else.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = Path(tmp) / "export"
    ...     with atomic_dir(out) as staging:
    ...         _ = (staging / "a.txt").write_text("new")
    ...     sorted(p.name for p in out.iterdir())
    ['a.txt']
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from autoprune.core.errors import AutopruneError

_TMP = "autoprune-tmp"
"""Marker in every temporary name: ``.{name}.{pid}.{n}.autoprune-tmp`` (files),
``.{name}.{pid}.{n}.autoprune-tmp.d`` (staged folders), ``...autoprune-old.d`` (a folder
being swapped out)."""
_counter = [0]
_FULL = (errno.ENOSPC, errno.EDQUOT)
_LOW_SPACE = 1 << 20
"""Free bytes below which a failed write (also torch's, which hides the errno) is taken
for a full disk."""


class DiskFull(AutopruneError):
    """A write failed because the disk (or the user's quota) is full; nothing was replaced."""


_FULL_TEXTS = ("database or disk is full", "No space left on device", "Disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from says the disk is full (an OSError
    with ENOSPC/EDQUOT, SQLite's "database or disk is full" through SQLAlchemy or MLflow)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull) or (
            isinstance(current, OSError) and current.errno in _FULL
        ):
            return True
        if any(text in str(current) for text in _FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_error(exc: BaseException, path: Path) -> DiskFull | None:
    """One-line :class:`DiskFull` when ``exc`` means that the disk under ``path`` is full."""
    full = isinstance(exc, DiskFull) or (isinstance(exc, OSError) and exc.errno in _FULL)
    if not full and isinstance(exc, RuntimeError):  # torch.save hides the errno
        try:
            stats = os.statvfs(path.parent if path.parent.exists() else ".")
            full = stats.f_bavail * stats.f_frsize < _LOW_SPACE
        except OSError:
            full = False
    if not full:
        return None
    return DiskFull(
        f"no space left on the disk writing {path}; free some space (or write elsewhere: "
        "--runs-dir, --export) and run the command again; the file(s) already there were "
        "left as they were"
    )


def _temp_sibling(path: Path, suffix: str = "") -> Path:
    _counter[0] += 1
    return path.with_name(f".{path.name}.{os.getpid()}.{_counter[0]}.{_TMP}{suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_temporaries(path: Path) -> Iterator[tuple[Path, bool]]:
    """``(temporary, is_old_folder)`` left beside ``path`` by writers that are gone."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.\d+\.{_TMP}(\.d|-old\.d)?")
    if not path.parent.is_dir():
        return
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and not _pid_alive(int(match.group(1))):
            yield entry, match.group(2) == "-old.d"


def clean_stale(path: Path) -> None:
    """Remove temporaries of ``path`` left by killed writers.

    A staged folder or file is only the writer's own output (or links to the user's files,
    whose originals stay in place) and is removed. A swapped-out old folder is put back when
    the writer died between the two renames (``path`` missing), else removed: every user
    entry in it is also linked into ``path``.
    """
    for temp, old_folder in _stale_temporaries(path):
        if old_folder and not path.exists():
            os.replace(temp, path)
        elif temp.is_dir() and not temp.is_symlink():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk, where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it is
    flushed and renamed over ``path``; on error it is removed and ``path`` is untouched.

    Example:
        >>> with atomic_file(tmp_dir / "model.pt") as tmp:  # doctest: +SKIP
        ...     torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        full = disk_full_error(exc, path)
        if full is not None:
            raise full from exc
        raise
    fsync_dir(path.parent)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` all-or-nothing; returns ``path``."""
    blob = data.encode() if isinstance(data, str) else data
    with atomic_file(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)


@contextlib.contextmanager
def scratch_dir(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` (same file system, so a rename from it into place
    is atomic), removed with its contents when the block ends, also on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    folder = _temp_sibling(path, ".d")
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target, follow_symlinks=False)


def _carry_over(old: Path, staging: Path, replaced: Collection[str]) -> None:
    """Link every entry of ``old`` that the new folder does not replace into ``staging``."""
    for entry in old.iterdir():
        if entry.name in replaced or (staging / entry.name).exists():
            continue
        if _TMP in entry.name:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, staging / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(staging / entry.name))


def _exchange() -> Callable[[Path, Path], bool] | None:
    """Linux's atomic ``renameat2(RENAME_EXCHANGE)``, when libc has it."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name, use_errno=True) if name else None
    function = getattr(libc, "renameat2", None)
    if function is None:
        return None
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a: Path, b: Path) -> bool:
        return function(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0

    return exchange


_EXCHANGE = _exchange()


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``, then remove the old folder."""
    if not target.exists():
        os.replace(staging, target)
        return
    if _EXCHANGE is not None and _EXCHANGE(staging, target):
        old = staging  # the exchange left the old folder at the staging name
    else:  # two renames: a crash between them is undone by clean_stale
        old = _temp_sibling(target, "-old.d")
        os.replace(target, old)
        os.replace(staging, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, replaces: Collection[str] = ()) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends without error it becomes ``target``.

    Args:
        target: The output folder; created (with its parents) when missing.
        replaces: Names in an existing ``target`` that belong to the previous output and are
            dropped even when the new output does not write them (e.g. an int8 model of an
            earlier export). Every other entry of the old folder is kept.

    On error (also Ctrl-C) the staging folder is removed and ``target`` is as it was.
    """
    target = Path(target)
    target = target.resolve() if target.is_symlink() else target
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} is a file, not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    staging = _temp_sibling(target, ".d")
    staging.mkdir()
    try:
        yield staging
        for entry in staging.rglob("*"):
            if entry.is_file() and not entry.is_symlink():
                _fsync_file(entry)
        if target.is_dir():
            _carry_over(target, staging, set(replaces))
            shutil.copymode(target, staging)
        fsync_dir(staging)
        _swap_in(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        full = disk_full_error(exc, target)
        if full is not None:
            raise full from exc
        raise
