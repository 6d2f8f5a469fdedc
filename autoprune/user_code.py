"""Import the user's own code named as ``path/to/file.py:fn`` or ``package.module:fn``.

Datasets and models both accept such references; this module is the one place that turns
one into a callable, with errors that name what the reference was for.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from autoprune.errors import AutopruneError

FORMS = "use path/to/file.py:function or package.module:function"


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
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def module_by_name(name: str, what: str) -> ModuleType:
    """Import ``package.module``; only a missing *target* module becomes a user error."""
    try:
        return importlib.import_module(name)
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
