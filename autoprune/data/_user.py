"""User datasets produced by a Python function named ``path/to/file.py:fn`` or ``pkg.mod:fn``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from autoprune.data._build import build_splits
from autoprune.data._splits import DataSplits
from autoprune.errors import AutopruneError

_FORMS = "use path/to/file.py:function or package.module:function"


def _module_from_file(path: Path) -> ModuleType:
    """Import a ``.py`` file under a private module name derived from its absolute path."""
    if not path.is_file():
        raise AutopruneError(f"dataset file {path} does not exist; {_FORMS}")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"_autoprune_user_data_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _module_by_name(name: str) -> ModuleType:
    """Import ``package.module``; a missing target module becomes an :class:`AutopruneError`."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(f"{exc.name}.")):
            raise  # the user's module exists but one of its own imports is missing
        raise AutopruneError(
            f"cannot import module '{name}' for the dataset; install it or put it on "
            f"sys.path, or {_FORMS}"
        ) from None


def load_function(target: str) -> Callable[[], object]:
    """Resolve ``path/to/file.py:function`` or ``package.module:function`` to the function.

    Raises:
        AutopruneError: Bad syntax, missing file or module, or no such callable.
    """
    source, _, func_name = target.rpartition(":")
    if not source or not func_name.isidentifier():
        raise AutopruneError(f"dataset '{target}' is not a function reference; {_FORMS}")
    if source.endswith(".py"):
        module = _module_from_file(Path(source).expanduser())
    else:
        module = _module_by_name(source)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise AutopruneError(
            f"dataset '{target}': {source} has no function '{func_name}'; "
            "define it there or fix the name after the colon"
        )
    return func


def read_user(target: str, *, val_size: int | float, seed: int) -> DataSplits:
    """Call a user's dataset function (with no arguments) and return its splits.

    The function returns either a ready :class:`DataSplits` (used as is: its own splits and
    normalisation are kept) or a tuple ``(x_train, y_train, x_test, y_test)`` of arrays or
    tensors, which is split and normalised like the built-in datasets.
    """
    result = load_function(target)()
    if isinstance(result, DataSplits):
        return result
    if isinstance(result, (tuple, list)) and len(result) == 4:
        x_train, y_train, x_test, y_test = result
        return build_splits(target, x_train, y_train, x_test, y_test, val_size=val_size, seed=seed)
    raise AutopruneError(
        f"dataset '{target}' returned {type(result).__name__}; return a DataSplits or a tuple "
        "(x_train, y_train, x_test, y_test)"
    )
