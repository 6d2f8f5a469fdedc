"""Checks of a search that run before any training, run folder or MLflow run.

:func:`check_settings` needs only the config: the method, its options, the environment's
extra arguments and a given Optuna storage (malformed, unsupported or unreachable).
:func:`check_untrained` needs a session on an *untrained* model of the same architecture
(:func:`autoprune.workflow.session.untrained_session`): the layers a mode can search and
every budget floor that does not depend on trained weights (MACs, parameters, bits, latency,
energy; not ``size``, whose coded file depends on the weights). The runner's own check
(:func:`agents.check_search`) still runs on the trained model afterwards.
:func:`check_resume_files` reads the files a resume will read, so that a damaged one is
refused before the baseline is loaded and the MLflow run reopened.
"""

from __future__ import annotations

from dataclasses import replace

from agents._base import SearchMethod
from agents._registry import make_method
from agents._run_store import pointed_checkpoint, read_json
from agents._runner import _method_options, check_budget
from agents._sb3_state import check_agent_files
from autoprune.core.budget import Budget
from autoprune.system.paths import child_path
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

WEIGHT_DEPENDENT = ("size",)
"""Budget metrics whose floor depends on the trained weights (the predicted ``.apz`` file)."""


def check_settings(config: SearchConfig) -> SearchMethod:
    """Refuse what ``config`` alone shows to be wrong; the method it builds.

    Raises:
        AutopruneError: For a bad value, an unknown method or option, or an Optuna
            ``storage`` that cannot be opened.
    """
    config.check()
    method = make_method(config.agent, _method_options(config))
    from agents._optuna import OptunaMethod

    if config.storage and isinstance(method, OptunaMethod):
        from agents._optuna_study import check_storage

        check_storage(config.storage)
    return method


def check_untrained(config: SearchConfig, session: SearchSession) -> None:
    """The budget checks of :func:`agents.check_search` that hold for any weights.

    Args:
        config: The search's settings.
        session: A session of ``config`` on an untrained model of the same architecture.

    Raises:
        AutopruneError: For a mode with no layer to search (no prunable layer), or a budget
            on MACs, parameters, bits, latency or energy that the search cannot reach.
    """
    method = make_method(config.agent, _method_options(config))
    budget = session.budget
    if type(method).check_budget is not SearchMethod.check_budget and (
        {"size", "bits"} & set(budget.metrics)
    ):
        return  # a one-shot method prices its own space from the trained weights
    kept = tuple(c for c in budget.constraints if c.metric not in WEIGHT_DEPENDENT)
    check_budget(config, replace(session, budget=Budget(kept)), method)


def check_resume_files(config: SearchConfig, run_name: str) -> None:
    """Read the checkpoint pointer and every JSON file of the newest checkpoint of the run
    ``run_name`` (without locking it); a damaged one is a one-line :class:`AutopruneError`."""
    checkpoint = pointed_checkpoint(child_path(config.runs_path / "searches", run_name))
    if checkpoint is None:
        return
    for path in sorted(checkpoint.rglob("*.json")):
        read_json(path)
    check_agent_files(checkpoint / "method")
