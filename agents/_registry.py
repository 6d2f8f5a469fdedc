"""Registry of search methods: names to classes, imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from agents._base import SearchMethod
from autoprune.core.errors import AutopruneError, unknown_name

_METHODS: dict[str, tuple[str, str]] = {
    "ddpg": ("agents._sb3_algorithms", "DDPGMethod"),
    "td3": ("agents._sb3_algorithms", "TD3Method"),
    "sac": ("agents._sb3_algorithms", "SACMethod"),
    "ppo": ("agents._sb3_algorithms", "PPOMethod"),
    "tpe": ("agents._optuna", "TPEMethod"),
    "gp": ("agents._optuna", "GPMethod"),
    "cmaes": ("agents._optuna", "CmaEsMethod"),
    "random": ("agents._optuna", "RandomMethod"),
    "nsga2": ("agents._optuna", "NSGA2Method"),
    "uniform": ("agents._uniform", "UniformMethod"),
    "admm": ("agents._admm_method", "AdmmMethod"),
    "deep-compression": ("agents._deep_compression_method", "DeepCompressionMethod"),
}


def method_names() -> list[str]:
    """Names of every search method, in registry order.

    Example:
        >>> method_names()[:4]
        ['ddpg', 'td3', 'sac', 'ppo']
    """
    return list(_METHODS)


def method_class(name: str) -> type[SearchMethod]:
    """The class registered as ``name``."""
    if name not in _METHODS:
        raise unknown_name("search method", name, method_names())
    module, attribute = _METHODS[name]
    return getattr(importlib.import_module(module), attribute)


def make_method(name: str, options: Mapping[str, Any] | None = None) -> SearchMethod:
    """Build the search method ``name`` with ``options`` (``SearchConfig.agent_options``).

    Raises:
        AutopruneError: For an unknown name (listing the valid ones) or an unknown option.

    Example:
        >>> make_method("ddpg", {"warmup_episodes": 5}).options.warmup_episodes
        5
    """
    if options is not None and not isinstance(options, Mapping):
        raise AutopruneError("agent_options must be a mapping of option names to values")
    return method_class(name)(dict(options or {}))
