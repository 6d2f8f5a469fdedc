"""Confining user-given names to the folder they name a child of: a run name given to
``--resume``, ``apply`` or ``export`` can never reach outside ``runs/searches``."""

from __future__ import annotations

import time
from pathlib import Path

from autoprune.core.bounded import brief
from autoprune.core.errors import AutopruneError


def child_path(root: Path, name: str, what: str = "run name") -> Path:
    """``root / name`` where ``name`` is one plain folder name that stays inside ``root``.

    Refused: an empty name, ``.`` or ``..``, a path separator, an absolute path, a NUL byte,
    or a symbolic link (at ``root / name``) that leads out of ``root``.

    Example:
        >>> child_path(Path("runs/searches"), "demo__ddpg__0__20261130-100134").name
        'demo__ddpg__0__20261130-100134'

    Raises:
        AutopruneError: one line naming the value and the fix.
    """
    if not isinstance(name, str) or not _plain(name):
        raise AutopruneError(
            f"{what} {brief(name)} is not a plain name of a folder under {root}; give the "
            "folder's name only (e.g. demo__ddpg__0__20261130-100134), no path"
        )
    path = root / name
    if path.is_symlink() or path.exists():
        inside = root.resolve()
        if not path.resolve().is_relative_to(inside):
            raise AutopruneError(
                f"{what} {brief(name)} links outside {root}; give a run folder that lies "
                f"under {root}"
            )
    return path


def is_child_name(root: Path, name: str) -> bool:
    """Whether :func:`child_path` accepts ``name`` (a run id, say, may be tried next)."""
    try:
        child_path(root, name)
    except AutopruneError:
        return False
    return True


def _plain(name: str) -> bool:
    """One path component: not empty, not ``.``/``..``, no separator or NUL."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def aside_path(path: Path, tag: str) -> Path:
    """A free sibling name ``NAME.<tag>-<time>`` (``-2``, ``-3``... when taken) to keep a
    copy of ``path`` under, never over another file.

    Example:
        >>> aside_path(Path("/nonexistent/h.jsonl"), "torn").name.startswith("h.jsonl.torn-")
        True
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
    return target
