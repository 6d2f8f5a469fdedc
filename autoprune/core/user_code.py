"""Import the user's own code named as ``path/to/file.py:fn`` or ``package.module:fn``.

Datasets and models both accept such references; this module is the one place that turns
one into a callable, with errors that name what the reference was for. An exception raised
inside the user's code (at import, in the builder, in ``forward``) becomes, through
:func:`user_errors`, a one-line :class:`AutopruneError` naming the user's file and line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from autoprune.core.errors import AutopruneError

FORMS = "use path/to/file.py:function or package.module:function"
_USER_FILES: set[str] = set()
"""Source files of the user modules imported so far (their frames are the user's code)."""
_MESSAGE_CHARS = 300


def _remember(module: ModuleType) -> None:
    path = getattr(module, "__file__", None)
    if path:
        _USER_FILES.add(str(Path(path).resolve()))


def user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc``'s traceback that lies in a user file, else None."""
    if isinstance(exc, SyntaxError) and str(Path(exc.filename or "?").resolve()) in _USER_FILES:
        return traceback.FrameSummary(str(exc.filename), exc.lineno or 0, "<module>")
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if str(Path(frame.filename).resolve()) in _USER_FILES:
            return frame
    return None


@contextlib.contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Turn an exception raised in the user's own code into a one-line :class:`AutopruneError`.

    Exceptions whose traceback never passes through a user file (a bug of autoprune or
    torch) are re-raised unchanged. The original stays chained (``--debug`` shows it).

    Example:
        >>> # with user_errors("model 'net.py:build'"): model = build()
        >>> # AutopruneError: model 'net.py:build' raised ValueError: bad width at net.py:7 ...
    """
    try:
        yield
    except AutopruneError:
        raise
    except Exception as exc:
        frame = user_frame(exc)
        if frame is None:
            raise
        text = " ".join(str(exc).split())
        if len(text) > _MESSAGE_CHARS:
            text = text[: _MESSAGE_CHARS - 3] + "..."
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        raise AutopruneError(
            f"{what} raised {detail} at {frame.filename}:{frame.lineno} (in {frame.name}); "
            "fix your code there (--debug shows the whole traceback)"
        ) from exc


def module_from_file(path: Path, what: str) -> ModuleType:
    """Import a ``.py`` file under a private module name derived from its absolute path."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise AutopruneError(f"{what} file {path} does not exist; {FORMS}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"_autoprune_user_{what}_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AutopruneError(f"{what} file {path} cannot be imported; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up here
    _USER_FILES.add(str(path))
    try:
        with user_errors(f"importing {what} file {path}"):
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def module_by_name(name: str, what: str) -> ModuleType:
    """Import ``package.module``; only a missing *target* module becomes a user error."""
    try:
        module = importlib.import_module(name)
        _remember(module)
        return module
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(f"{exc.name}.")):
            raise  # the user's module exists but one of its own imports is missing
        raise AutopruneError(
            f"{what} module '{name}' is not importable; put its folder on PYTHONPATH, or {FORMS}"
        ) from None


def load_callable(target: str, what: str) -> Callable[..., Any]:
    """Resolve ``path/to/file.py:fn`` or ``package.module:fn`` to the callable.

    Args:
        target: The reference.
        what: What it is for (``dataset``, ``model``), used in error messages.

    Example:
        >>> load_callable("os.path:join", "dataset")("a", "b")
        'a/b'
    """
    source, _, attr = target.rpartition(":")
    if not source or not attr.isidentifier():
        raise AutopruneError(f"{what} '{target}' is not a function reference; {FORMS}")
    is_file = source.endswith(".py") or "/" in source or "\\" in source
    module = module_from_file(Path(source), what) if is_file else module_by_name(source, what)
    func = getattr(module, attr, None)
    if not callable(func):
        raise AutopruneError(
            f"{what} '{target}': {source} has no function '{attr}'; define it there or fix "
            "the name after the colon"
        )
    return func
