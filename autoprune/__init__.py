"""autoprune: automatic per-layer pruning and mixed-precision search for PyTorch CNNs.

The Python API (:mod:`autoprune.api`), imported on first use so that ``import autoprune``
stays cheap:

- :func:`search`: one tracked search, as ``autoprune search`` runs it;
- :func:`apply`: compress, fine-tune and export under a policy, as ``autoprune apply``;
- :func:`train`: train a classifier (an ``nn.Module`` or a name) on streamed data;
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

import typing as _typing

if _typing.TYPE_CHECKING:
    from autoprune.api import SearchHooks, SearchRun, apply, load_compressed, search, train
    from autoprune.core.policy import Policy
    from autoprune.deploy.apply import ApplyResult

    __version__: str

_LAZY = {
    "search": "autoprune.api",
    "apply": "autoprune.api",
    "load_compressed": "autoprune.api",
    "train": "autoprune.api",
    "SearchRun": "autoprune.api",
    "SearchHooks": "autoprune.api",
    "ApplyResult": "autoprune.deploy.apply",
    "Policy": "autoprune.core.policy",
}
"""The module that defines each public name, imported on first use."""

__all__ = [
    "ApplyResult",
    "Policy",
    "SearchHooks",
    "SearchRun",
    "__version__",
    "apply",
    "load_compressed",
    "search",
    "train",
]


def _package_version() -> str:
    """The installed distribution's version (a source tree never installed: ``0.0.0+unknown``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autoprune")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def __getattr__(name: str) -> _typing.Any:
    if name == "__version__":
        value: _typing.Any = _package_version()
    elif name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'autoprune' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API and the subpackages imported so far (no import leftovers)."""
    loaded = {k for k, v in globals().items() if type(v) is type(_typing) and not k.startswith("_")}
    return sorted(set(__all__) | loaded)
