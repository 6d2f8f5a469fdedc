"""``run_search``: the one runner of every search method.

The runner owns the evaluation budget (exactly ``config.episodes`` records), the history,
checkpoints and resume; the method only drives environments (see
:class:`~agents._base.SearchMethod`). A fresh search first hands the method its seed
policies (``config.seed_policies``, :mod:`agents._seeds`).

An episode that repeats an earlier policy counts toward ``episodes`` like any other: an RL
agent learns from each of its episodes, and the evaluator's cache answers the repeat at no
evaluation cost. Repeats are reported instead: ``distinct_policies`` in the result (and
``summary.json``, the MLflow run, the CLI's report), with a warning when more than a tenth
of the evaluations were repeats (:func:`autoprune.core.results.repeats_message`).

Resume semantics. Every finished episode is appended to ``history.jsonl`` (fsync'ed) before
anything else hears of it, and the agent is checkpointed every ``checkpoint_every`` episodes
and at the end. After a crash (even ``kill -9``), ``run_search(config, resume=run_name)``
keeps every record of ``history.jsonl`` — none is lost or counted twice — and restores the
agent, random states and evaluator cache from the newest checkpoint. Records written after
that checkpoint stay in the history and count against the budget, but the agent has not
learnt from them (an SB3 agent continues from its checkpointed weights and replay buffer;
their metrics do seed the evaluator cache). Optuna methods resume from their study in the
storage, which holds every finished trial.

One writer per run: the run directory is locked while a search (or the caller holding the
store of :func:`open_run`) writes it, so a second process is refused with the first's PID.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents._base import SearchMethod
from agents._context import SearchContext, search_env
from agents._ray import check_scale_out
from agents._registry import make_method, method_class
from agents._rng import seed_everything, set_rng_state
from agents._run_store import RunExists, RunStore, existing_run_message, read_json
from autoprune.core.bounded import brief
from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.core.results import EpisodeRecord, SearchResult
from autoprune.system.database_url import without_passwords
from autoprune.system.paths import child_path
from autoprune.workflow.config import SearchConfig, fold_legacy_env_kwargs
from autoprune.workflow.config_file import saved_run_defaults
from autoprune.workflow.session import SearchSession, prepare_search

RESUME_MAY_CHANGE = (
    "episodes",
    "device",
    "seed_policies",
    "checkpoint_every",
    "runs_dir",
    "tracking_uri",
    "data_dir",
    "ray_address",
    "worker_cpus",
    "worker_gpus",
)
"""Config keys a resumed search may change (a larger ``episodes`` extends the search; the
cluster and its resources may differ)."""
SESSION_KEYS = (
    "model",
    "weights",
    "dataset",
    "data_dir",
    "profile",
    "seed",
    "val_samples",
    "calib_batches",
    "finetune_epochs",
    "importance",
    "round_to",
)
"""Config keys that ``prepare_search`` consumes: a given session must match them."""
DEFAULTS = SearchConfig().to_dict()
"""Values of keys that runs saved by an older version lack."""


def run_name_for(config: SearchConfig, when: float | None = None) -> str:
    """CleanRL-style run name ``{model}__{agent}__{seed}__{YYYYmmdd-HHMMSS}``.

    The name is safe on a command line and as a folder: it starts with a letter or digit and
    holds only ``[A-Za-z0-9._-]``; a model given as a path contributes its file name and
    function, at most 40 characters (``/work/build.py:net`` gives ``build-net``).

    Example:
        >>> run_name_for(SearchConfig(model="demo", agent="tpe", seed=3), when=0)[:15]
        'demo__tpe__3__1'
        >>> run_name_for(SearchConfig(model="/work/m/build.py:net", agent="tpe"), when=0)[:20]
        'build-net__tpe__0__1'
    """
    model = _name_part(config.model)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return f"{model}__{config.agent}__{config.seed}__{stamp}"


def _name_part(model: str) -> str:
    """``model`` as the first part of a run name: ``[A-Za-z0-9._-]``, starting with a letter
    or digit, at most 40 characters."""
    tail = model.replace("\\", "/").rsplit("/", 1)[-1].replace(".py:", ":")
    safe = "".join(c if c.isalnum() and c.isascii() or c in "._-" else "-" for c in tail)
    return safe.strip("._-")[:40].rstrip("._-") or "model"


def run_search(
    config: SearchConfig,
    *,
    session: SearchSession | None = None,
    on_record: Callable[[EpisodeRecord], None] | None = None,
    resume: str | None = None,
    run_name: str | None = None,
    store: RunStore | None = None,
) -> SearchResult:
    """Run (or resume) the search ``config.agent`` for ``config.episodes`` evaluations.

    Args:
        config: The search settings (``agent_options`` are the method's options; the
            environment's settings are config keys, see :meth:`SearchConfig.env_settings`).
        session: A session prepared for ``config``'s model, data, profile and evaluator
            settings (None: ``prepare_search(config)``); its budget is replaced by
            ``config.targets``.
        on_record: Called with each new record, after it is stored durably.
        resume: Name of a run under ``<runs_dir>/searches`` to continue.
        run_name: Name of a new run (default :func:`run_name_for`); with ``resume`` it must
            be the same name.
        store: A run opened with :func:`open_run` (instead of ``resume``/``run_name``); it
            stays open (locked) for the caller.

    Returns:
        The result; ``len(result.history) == config.episodes``.

    Raises:
        AutopruneError: For a bad config, an unknown method or option, an existing run name,
            a resume whose settings differ from the saved run, a run another process is
            writing, or a damaged history.

    Example:
        >>> # result = run_search(SearchConfig(agent="tpe", episodes=20)); result.best.policy
    """
    if store is not None and (resume is not None or run_name is not None):
        raise AutopruneError("pass either store or resume/run_name to run_search, not both")
    ctx = _start(config, session, on_record, resume, run_name, store)
    try:
        return _finish(ctx)
    finally:
        if store is None:
            ctx.store.close()


def _finish(ctx: SearchContext) -> SearchResult:
    """Spend the rest of the budget, checkpoint, and write ``result.json``."""
    config = ctx.config
    if not ctx.exhausted:
        method = ctx.method
        if isinstance(method, SearchMethod) and _fresh(ctx, method):
            method.plant_seeds(ctx)
        ctx.method.run(ctx)
        if not ctx.exhausted:
            raise RuntimeError(
                f"search method '{config.agent}' stopped after {ctx.recorded} of {ctx.budget} "
                "evaluations"
            )
        ctx.maybe_checkpoint(force=True)
    result = SearchResult(
        method=config.agent,
        history=list(ctx.history),
        baseline_metrics=dict(ctx.evaluator.baseline_metrics),
        objectives=ctx.method.objectives,
        seconds=ctx.seconds,
    )
    ctx.store.write_result(result.to_dict())
    return result


def _fresh(ctx: SearchContext, method: SearchMethod) -> bool:
    """Whether the search starts now and takes seed policies (see :mod:`agents._seeds`;
    one-shot methods spend their fixed evaluations on their own policy)."""
    fixed = method.fixed_evaluations is not None
    return not ctx.resumed and ctx.recorded == 0 and bool(ctx.config.seed_policies) and not fixed


def _start(
    config: SearchConfig,
    session: SearchSession | None,
    on_record: Callable[[EpisodeRecord], None] | None,
    resume: str | None,
    run_name: str | None,
    given: RunStore | None,
) -> SearchContext:
    """Check the settings (an infeasible budget fails here, in the environment's constructor,
    before a run directory exists), then open the run and restore its state."""
    config.check()
    method = make_method(config.agent, _method_options(config))
    if session is not None:
        session = _session_for(config, session)
    if given is not None:
        _check_same_settings(given.saved_config, config.to_dict())
    store = given or (open_run(config, resume=resume) if resume else None)
    if store is None:
        _check_new_run(config, run_name)
    try:
        history = store.read_history() if store is not None else []  # damage fails early
        session = session or prepare_search(config)
        check_budget(config, session, method)
        store = store or open_run(config, run_name=run_name)
        ctx = SearchContext(
            config,
            session,
            store,
            method,
            history,
            on_record=on_record,
            resumed=store.resumed,
            seconds_before=_restore(config, store.latest_checkpoint(), history, session, method),
        )
        for record in history:
            ctx.remember(record)
    except BaseException:
        if store is not None and given is None:
            store.close()
        raise
    return ctx


def _session_for(config: SearchConfig, session: SearchSession) -> SearchSession:
    """``session`` with ``config``'s budget; refused when it was prepared for other data."""
    given, prepared = config.to_dict(), session.config.to_dict()
    differing = [k for k in SESSION_KEYS if given[k] != prepared[k]]
    if differing:
        raise AutopruneError(
            f"the session was prepared with other {', '.join(differing)}; pass "
            "session=prepare_search(config) or leave session out"
        )
    return replace(session, config=config, budget=Budget.parse(list(config.targets)))


def _check_new_run(config: SearchConfig, run_name: str | None) -> None:
    """Fail before any slow work when the new run's name is taken."""
    if run_name is None:
        return
    path = child_path(config.runs_path / "searches", run_name)
    if path.exists():
        raise AutopruneError(existing_run_message(path))


def _method_options(config: SearchConfig) -> dict[str, Any]:
    """The method's options, with ``config.workers`` as its parallelism and the search's
    device for the agent's networks (unless the agent options name another)."""
    check_scale_out(config)
    options = dict(config.agent_options)
    fields = {f.name for f in dataclasses.fields(method_class(config.agent).Options)}
    if "device" in fields and "device" not in options and config.device != "auto":
        options["device"] = config.device
    return _with_workers(config, options)


PARALLEL_OPTIONS = ("n_envs", "n_workers")
"""Method options that ``config.workers`` sets: parallel environments, Optuna workers."""


def _with_workers(config: SearchConfig, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the method's parallelism option set to ``config.workers`` (more
    than one worker, or the Ray backend); an agent option that says otherwise is refused."""
    if config.workers == 1 and config.backend == "local":
        return options
    fields = {f.name for f in dataclasses.fields(method_class(config.agent).Options)}
    for key in PARALLEL_OPTIONS:
        if key not in fields:
            continue
        if key in options and options[key] != config.workers:
            raise AutopruneError(
                f"agent option {key}={options[key]!r} contradicts --workers {config.workers}; "
                f"drop the agent option and pass only --workers"
            )
        options[key] = config.workers
    return options


def check_search(config: SearchConfig, session: SearchSession) -> None:
    """Fail now, before anything is written, if ``config`` cannot run on ``session``.

    Checks the method and its options, and builds the environment once, which refuses an
    infeasible budget with the smallest reachable value.
    """
    config.check()
    check_budget(config, session, make_method(config.agent, _method_options(config)))


def check_budget(
    config: SearchConfig,
    session: SearchSession,
    method: SearchMethod,
) -> None:
    """Refuse an infeasible budget with the smallest value the method's space reaches: the
    method checks its own space (one-shot methods), else the environment's constructor does."""
    if not method.check_budget(session.evaluator, session.budget):
        search_env(config, session)


def open_run(
    config: SearchConfig, *, resume: str | None = None, run_name: str | None = None
) -> RunStore:
    """Create (or, with ``resume``, reopen) the run directory of ``config`` and lock it.

    A new run without ``run_name`` gets the first free name of :func:`run_name_for` (with a
    ``-2``, ``-3``... suffix), taken atomically, so two searches started in the same second
    get different runs. The caller closes the store (``with open_run(...) as store:``).

    Raises:
        AutopruneError: for a taken ``run_name``, a missing run, a run that another live
            process is writing (naming its PID), or a resume with other settings.
    """
    root = config.runs_path / "searches"
    if resume is None:
        if run_name is not None:
            return RunStore.create(child_path(root, run_name), config.to_dict())
        return _create_unique(root, config)
    if run_name is not None and run_name != resume:
        raise AutopruneError(
            f"run_name '{run_name}' differs from resume '{resume}'; pass only resume"
        )
    store = RunStore.open(child_path(root, resume))
    try:
        _check_same_settings(store.saved_config, config.to_dict())
    except BaseException:
        store.close()
        raise
    return store


def _create_unique(root: Path, config: SearchConfig) -> RunStore:
    name = run_name_for(config)
    suffix = 1
    while True:
        candidate = name if suffix == 1 else f"{name}-{suffix}"
        try:
            return RunStore.create(root / candidate, config.to_dict())
        except RunExists:
            suffix += 1


def _check_same_settings(saved: dict[str, Any], given: dict[str, Any]) -> None:
    # a run saved before a key existed had its default
    saved = {**DEFAULTS, **saved_run_defaults(fold_legacy_env_kwargs(saved))}
    given = without_passwords(given)  # config.json never holds one (RunStore.create)
    differing = sorted(
        key
        for key in set(saved) | set(given)
        if key not in RESUME_MAY_CHANGE and saved.get(key) != given.get(key)
    )
    if differing:
        detail = "; ".join(
            f"{k}: saved {brief(saved.get(k))}, given {brief(given.get(k))}" for k in differing
        )
        raise AutopruneError(
            f"cannot resume with different settings ({detail}); resume with the saved config"
        )


def _restore(
    config: SearchConfig,
    checkpoint: Path | None,
    history: list[EpisodeRecord],
    session: SearchSession,
    method: SearchMethod,
) -> float:
    """Load the checkpoint (or seed a fresh start); the search seconds before this call."""
    if checkpoint is None:
        seed_everything(config.seed + len(history))
        return 0.0
    saved = read_json(checkpoint / "history.json")
    if saved != [r.to_dict() for r in history[: len(saved)]] or len(saved) > len(history):
        raise AutopruneError(
            f"checkpoint {checkpoint} disagrees with history.jsonl; start a new run instead"
        )
    set_rng_state(read_json(checkpoint / "rng.json"))
    session.evaluator.load_state_dict(read_json(checkpoint / "evaluator.json"))
    method.load_state(checkpoint / "method")
    return float(read_json(checkpoint / "runner.json")["seconds"])
