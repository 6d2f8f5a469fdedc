"""Search methods on one runner: SB3 agents, Optuna samplers and the uniform baseline.

Every method drives the same :class:`envs.CompressionEnv` episodes; :func:`run_search` owns
the evaluation budget, the history, checkpoints and resume.

Example:
    >>> from agents import method_names
    >>> "ddpg" in method_names() and "nsga2" in method_names()
    True
"""

from __future__ import annotations

from agents._base import SearchMethod
from agents._context import SearchContext
from agents._join import join_search
from agents._preflight import check_resume_files, check_settings, check_untrained
from agents._ray import check_scale_out
from agents._registry import make_method, method_class, method_names
from agents._run_store import RunStore
from agents._runner import check_search, open_run, run_name_for, run_search

__all__ = [
    "RunStore",
    "SearchContext",
    "SearchMethod",
    "check_resume_files",
    "check_scale_out",
    "check_search",
    "check_settings",
    "check_untrained",
    "join_search",
    "make_method",
    "method_class",
    "method_names",
    "open_run",
    "run_name_for",
    "run_search",
]
