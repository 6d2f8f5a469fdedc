"""autoprune: automatic per-layer pruning and mixed-precision search for PyTorch CNNs.

The Python API (:mod:`autoprune.api`), imported on first use so that ``import autoprune``
stays cheap:

- :func:`search`: one tracked search, as ``autoprune search`` runs it;
- :func:`apply`: compress, fine-tune and export under a policy, as ``autoprune apply``;
- :func:`load_compressed`: the model stored in a ``.apz`` file or an exported ``model.pt``.

The library's layers are packages: ``core`` (layer specs, policies, budgets, training
loops), ``system`` (locks, stop-safe sections, user code), ``workflow`` (config, the
evaluation path, a tracked search), ``deploy`` (apply and coded files), with ``compress``,
``cost``, ``latency``, ``coding``, ``export``, ``tracking``, ``data`` and ``models`` beside
them.

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
    from autoprune.api import SearchHooks, SearchRun, apply, load_compressed, search
    from autoprune.core.policy import Policy
    from autoprune.deploy.apply import ApplyResult

_LAZY = {
    "search": "autoprune.api",
    "apply": "autoprune.api",
    "load_compressed": "autoprune.api",
    "SearchRun": "autoprune.api",
    "SearchHooks": "autoprune.api",
    "ApplyResult": "autoprune.deploy.apply",
    "Policy": "autoprune.core.policy",
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
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autoprune' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
