"""autoprune: automatic per-layer pruning and mixed-precision search for PyTorch CNNs.

The Python API (:mod:`autoprune.api`), imported on first use so that ``import autoprune``
stays cheap:

- :func:`search`: one tracked search, as ``autoprune search`` runs it;
- :func:`apply`: compress, fine-tune and export under a policy, as ``autoprune apply``;
- :func:`load_compressed`: the model stored in a ``.apz`` file or an exported ``model.pt``.

``autoprune.apply`` is also the module of :func:`autoprune.apply.apply_policy`; the module
is callable and calling it runs :func:`autoprune.api.apply`.

Example:
    >>> import autoprune
    >>> run = autoprune.search("demo", "digits", episodes=4)  # doctest: +SKIP
    >>> print(run.best_policy)  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("autoprune")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from autoprune.api import SearchHooks, SearchRun, load_compressed, search
    from autoprune.apply import ApplyResult
    from autoprune.policy import Policy

_LAZY = {
    "search": "autoprune.api",
    "load_compressed": "autoprune.api",
    "SearchRun": "autoprune.api",
    "SearchHooks": "autoprune.api",
    "ApplyResult": "autoprune.apply",
    "Policy": "autoprune.policy",
}

__all__ = [
    "ApplyResult",
    "Policy",
    "SearchHooks",
    "SearchRun",
    "__version__",
    "apply",
    "load_compressed",
    "search",
]


def __getattr__(name: str) -> Any:
    if name == "apply":  # the callable module (see autoprune/apply.py)
        return import_module("autoprune.apply")
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autoprune' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
