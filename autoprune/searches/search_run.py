"""One tracked search, as ``autoprune search`` runs it and :func:`autoprune.search` returns it.

:func:`tracked_search` checks the config and the data before any slow work
(:func:`~autoprune.searches.preflight.preflight`), trains or loads the baseline, locks the run
folder, opens the MLflow run (the same one on resume), runs the search method and writes the result
files: ``summary.json``, ``best_policy.json``, the plots and ``best_model.apz`` (the best
policy's coded model). Progress, warnings and the run's name reach the caller through
:class:`SearchHooks`; the library itself prints nothing.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.policy import Policy
from autoprune.core.results import EpisodeRecord, SearchResult, repeats_message
from autoprune.core.training import ProgressFn
from autoprune.data import DataSplits
from autoprune.searches.finished_search import refuse_finished
from autoprune.searches.preflight import preflight
from autoprune.system.atomic_dir import write_atomic
from autoprune.system.database_url import drop_passwords
from autoprune.tracking import (
    SearchTracker,
    autoprune_commit,
    provenance_params,
    tracking_location,
)
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.inputs import INPUTS_FILE, UserObjects, check_same_objects
from autoprune.workflow.session import SearchSession, prepare_search

if TYPE_CHECKING:
    from agents import RunStore

SearchProgressFn = Callable[[int, float], None]
"""``(episodes done, best feasible accuracy so far or -inf)``."""
LAYER_REFRESH_EVERY = 50
"""Episodes between refreshes of the per-layer artifacts (``layers/``) during a search."""


class SearchHooks:
    """Where a search reports to its caller; every hook does nothing by default.

    Subclass and override what you need (the CLI draws progress bars and prints warnings).

    Example:
        >>> class Printing(SearchHooks):
        ...     def warn(self, message: str) -> None:
        ...         print(message)
    """

    def warn(self, message: str) -> None:
        """A warning for the user (default: :func:`warnings.warn`)."""
        warnings.warn(message, UserWarning, stacklevel=3)

    def random_only(self, config: SearchConfig, random_episodes: int, enough: int) -> None:
        """The search ends before the method first learns: every action is random."""
        self.warn(
            f"{config.agent} acts randomly for its first {random_episodes} episodes (warm-up), "
            f"so with {config.episodes} episodes every action is random; use {enough} or more "
            "for it to learn"
        )

    def run_named(self, run_name: str) -> None:
        """The run folder exists: ``run_name`` is what ``resume`` takes from now on."""

    def baseline(self, model: str) -> AbstractContextManager[ProgressFn | None]:
        """Entered while a missing baseline trains; yields a per-batch callback or None."""
        return contextlib.nullcontext(None)

    def search(
        self, agent: str, total: int, done: int
    ) -> AbstractContextManager[SearchProgressFn | None]:
        """Entered while the method searches (``done`` episodes recorded by an earlier
        process); yields a per-episode callback or None."""
        return contextlib.nullcontext(None)


@dataclass
class SearchRun:
    """A finished, tracked search: the :class:`~autoprune.core.results.SearchResult`, where it
    was recorded and what it compressed.

    Example:
        >>> run = autoprune.search("demo", "digits", episodes=4)  # doctest: +SKIP
        >>> run.best_policy.keep_ratios(), run.run_dir / "best_model.apz"  # doctest: +SKIP
    """

    result: SearchResult
    files: dict[str, Path]
    """Result files by kind: ``summary``, ``best_policy``, ``best_model``, plots..."""
    run_id: str
    """The MLflow run id."""
    run_dir: Path
    """The run folder (``runs_dir/searches/RUN_NAME``); its name is what resume takes."""
    session: SearchSession

    @property
    def run_name(self) -> str:
        """The run's name (``{model}__{agent}__{seed}__{time}``)."""
        return self.run_dir.name

    @property
    def best(self) -> EpisodeRecord | None:
        """The best feasible episode (None when no episode met the budget)."""
        return self.result.best

    @property
    def best_policy(self) -> Policy | None:
        """The best feasible policy (None when no episode met the budget)."""
        return self.result.best.policy if self.result.best is not None else None

    @property
    def history(self) -> list[EpisodeRecord]:
        """Every evaluated episode, in order."""
        return self.result.history

    @property
    def pareto(self) -> list[EpisodeRecord]:
        """The Pareto front of the feasible episodes."""
        return self.result.pareto

    @property
    def baseline_metrics(self) -> dict[str, float]:
        """Accuracy and costs of the uncompressed model."""
        return self.result.baseline_metrics

    @property
    def method(self) -> str:
        """The search method."""
        return self.result.method

    @property
    def seconds(self) -> float:
        """Wall time of the search itself."""
        return self.result.seconds

    @property
    def weights(self) -> Path | None:
        """The trained state dict the search compressed (what ``apply`` takes)."""
        return self.session.weights_path


def check_agent(name: str) -> None:
    """Fail fast on an unknown search method (and keep Optuna's per-trial logs quiet)."""
    import optuna

    from agents import method_names

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if name not in method_names():
        raise unknown_name("agent", name, method_names())


def one_shot_budget(config: SearchConfig, episodes: int | None) -> SearchConfig:
    """One-shot methods (admm, deep-compression) spend a fixed number of evaluations
    unless ``episodes`` was given."""
    from agents import method_class

    fixed = method_class(config.agent).fixed_evaluations
    if fixed is not None and episodes is None:
        return config.replace(episodes=fixed)
    return config


def random_warmup(config: SearchConfig) -> tuple[int, int] | None:
    """``(random episodes, episodes needed to learn)`` when the search ends before the method
    first learns, so that every action it takes is random; else None."""
    from agents import make_method

    method = make_method(config.agent, dict(config.agent_options))
    before = method.episodes_before_learning(config.episodes)
    if before is None or not 0 < config.episodes <= before:
        return None
    budgets = range(config.episodes + 1, config.episodes + 100_000)
    enough = next((n for n in budgets if n > (method.episodes_before_learning(n) or 0)), None)
    return before, enough or before + 1


def check_weights(config: SearchConfig) -> None:
    """Refuse a ``weights`` file that does not exist."""
    if config.weights is not None and not Path(config.weights).is_file():
        raise AutopruneError(
            f"weights file {config.weights} does not exist; pass a state dict saved with "
            "torch.save(model.state_dict(), PATH) or omit --weights to train a baseline"
        )


def open_tracker(config: SearchConfig, run_name: str, parent: str | None = None) -> SearchTracker:
    """A tracker for ``config``; an unreachable server fails here, before any work."""
    tracker = SearchTracker(
        tracking_location(config.tracking_uri, config.runs_path),
        run_name=run_name,
        parent_run_id=parent,
    )
    tracker.store.check()
    return tracker


def run_tags(config: SearchConfig) -> dict[str, Any]:
    """MLflow tags of a search run."""
    return {
        "model": config.model,
        "dataset": config.dataset,
        "agent": config.agent,
        "mode": config.mode,
        "seed": config.seed,
        "targets": ",".join(config.targets),
        "git_sha": autoprune_commit(),
    }


def run_params(config: SearchConfig, session: SearchSession) -> dict[str, Any]:
    """MLflow params of a search run: its configuration and ``provenance.*`` (the weights
    searched, the autoprune commit, package versions)."""
    return {**config.to_dict(), **provenance_params(session.weights_path)}


def prepare(
    config: SearchConfig,
    data_dir: Path | None,
    data: DataSplits | None = None,
    hooks: SearchHooks | None = None,
    objects: UserObjects | None = None,
) -> SearchSession:
    """:func:`~autoprune.workflow.session.prepare_search`, reporting a baseline's training to
    ``hooks`` (``data``: the dataset :func:`preflight` loaded)."""
    with (hooks or SearchHooks()).baseline(config.model) as on_batch:
        return prepare_search(
            config, data_dir=data_dir, on_batch=on_batch, data=data, objects=objects
        )


def tracked_search(
    config: SearchConfig,
    *,
    episodes_given: bool = True,
    data_dir: Path | None = None,
    resume: str | None = None,
    hooks: SearchHooks | None = None,
    objects: UserObjects | None = None,
) -> SearchRun:
    """Check ``config``, then search inside an MLflow run and write the result files.

    Args:
        config: The search (``runs_dir``, ``tracking_uri`` say where it is recorded).
        episodes_given: Whether the user chose ``episodes`` (else a one-shot method spends
            its own fixed number of evaluations).
        data_dir: Folder of the dataset files (overrides ``config.data_dir``).
        resume: Name of an earlier run of this config to continue.
        hooks: Progress, warnings and the run name (default: silent, warnings as
            :class:`UserWarning`).
        objects: The caller's model, data, metric or fine-tuning instead of the config's
            names (the run records what it can of them in ``inputs.json``).

    Raises:
        AutopruneError: For the first problem found before any slow work, naming the fix.
    """
    hooks = hooks or SearchHooks()
    check_agent(config.agent)
    if not episodes_given:
        config = one_shot_budget(config, None)
    check_weights(config)
    data = preflight([config], data_dir, resume=resume, objects=objects)
    warmup = random_warmup(config)
    if warmup is not None:
        hooks.random_only(config, *warmup)
    return _locked_search(config, data_dir, resume, data, hooks, objects)


def _locked_search(
    config: SearchConfig,
    data_dir: Path | None,
    resume: str | None,
    data: DataSplits | None,
    hooks: SearchHooks,
    objects: UserObjects | None = None,
) -> SearchRun:
    """Lock the run (a live one is refused, a damaged history reported, before any slow
    work), prepare, then search inside the run's MLflow run (the same one on resume)."""
    from agents import check_search, open_run, run_name_for

    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_run(config, resume=resume)) if resume else None
        if store is not None:
            hooks.run_named(store.path.name)
            recorded = len(store.read_history())
        tracker = open_tracker(config, resume or run_name_for(config))
        if store is not None:
            reopen = previous_run(store, tracker)
            status = None if reopen is None else tracker.run_status(reopen)
            refuse_finished(store.path, config, recorded, status)
        record = objects.record() if objects is not None else None
        if store is not None and record is not None:
            check_same_objects(store.path, record)
        session = prepare(config, data_dir, data, hooks, objects)
        check_search(config, session)
        if store is None:
            store = stack.enter_context(open_run(config))
            tracker.run_name = store.path.name
            hooks.run_named(store.path.name)
            if record is not None:
                write_atomic(store.path / INPUTS_FILE, json.dumps(record, indent=2))
        reopen = previous_run(store, tracker)
        params = run_params(config, session)
        with tracker.start(params, run_tags(config), run_id=reopen) as run_id:
            store.save_tracking_run(run_id, tracker.tracking_uri)
            result, files = execute(config, session, tracker, store.path.name, store, hooks)
    run_dir = config.runs_path / "searches" / store.path.name
    return SearchRun(result, files, run_id, run_dir, session)


def execute(
    config: SearchConfig,
    session: SearchSession,
    tracker: SearchTracker,
    run_name: str,
    store: RunStore | None = None,
    hooks: SearchHooks | None = None,
) -> tuple[SearchResult, dict[str, Path]]:
    """Run one search inside an open tracker run and write its result files.

    With ``store`` (a run opened by :func:`agents.open_run`) the search continues that run;
    episodes recorded by an earlier process that the MLflow run lacks are logged first.
    """
    from agents import run_search

    prior = store.read_history() if store is not None and store.resumed else []
    baseline = session.evaluator.baseline_metrics
    best = [log_missing_episodes(tracker, prior, baseline)]
    records = list(prior)
    out_dir = config.runs_path / "searches" / run_name
    hooks = hooks or SearchHooks()
    with hooks.search(config.agent, config.episodes, len(prior)) as progress:

        def on_record(record: EpisodeRecord) -> None:
            if record.feasible:
                best[0] = max(best[0], record.metrics["accuracy"])
            tracker.log_episode(record, best_so_far=best[0], baseline=baseline)
            records.append(record)
            if len(records) % LAYER_REFRESH_EVERY == 0:
                _refresh_layers(tracker, records, out_dir, hooks)
            if progress is not None:
                progress(record.index + 1, best[0])

        where = {"store": store} if store is not None else {"run_name": run_name}
        result = run_search(config, session=session, on_record=on_record, **where)
    files = tracker.log_result(result, out_dir)
    _report_repeats(result, hooks)
    if result.best is not None:
        files.update(_save_best_model(session, result, out_dir, tracker))
    trained = out_dir / "trained_model.apz"  # a one-shot method's own retrained model
    if trained.is_file():
        tracker.log_model_file(trained)
        files["trained_model"] = trained
    return result, files


def _report_repeats(result: SearchResult, hooks: SearchHooks) -> None:
    """Warn when more than a tenth of the evaluations were repeats (the count is the tag
    ``search.distinct_policies`` and ``distinct_policies`` in ``summary.json``).

    Repeats still count toward ``episodes`` (an RL agent learns from each episode, and the
    cache answers them at no evaluation cost); they are reported, not replaced."""
    message = repeats_message(result.history)
    if message is not None:
        hooks.warn(message)


def _refresh_layers(
    tracker: SearchTracker, records: list[EpisodeRecord], out_dir: Path, hooks: SearchHooks
) -> None:
    """Log the per-layer view so far; a failure is a warning, never the search's end."""
    try:
        tracker.log_layers(records, out_dir)
    except Exception as exc:  # the dashboard must not cost the search
        hooks.warn(f"could not refresh the per-layer view in MLflow: {exc}")


def _save_best_model(
    session: SearchSession, result: SearchResult, out_dir: Path, tracker: SearchTracker
) -> dict[str, Path]:
    """The best policy's compressed (not fine-tuned) model as ``.apz``, logged to MLflow;
    pruned a little further if its coded file would miss the search's size budget."""
    from autoprune.workflow.coded_file import code_within

    assert result.best is not None
    model = session.evaluator.compress(result.best.policy)
    path = out_dir / "best_model.apz"
    names = [s.name for s in session.evaluator.specs]
    limits = session.budget.limits(session.evaluator.baseline_metrics)
    header = {"policy": result.best.policy.without_effective().to_dict()}  # as predicted
    code_within(model, names, path, header, limits)
    tracker.log_model_file(path)
    return {"best_model": path}


def previous_run(store: RunStore, tracker: SearchTracker) -> str | None:
    """The MLflow run a resumed search continues: the one recorded in the run folder (when
    it is in this tracking store), else the newest run named after the folder."""
    if not store.resumed:
        return None
    saved = store.tracking_run()
    if saved is not None and saved.get("tracking_uri") == drop_passwords(tracker.tracking_uri):
        return saved["run_id"]
    return tracker.find_run(store.path.name)


def log_missing_episodes(
    tracker: SearchTracker,
    history: Sequence[EpisodeRecord],
    baseline: Mapping[str, float] | None = None,
) -> float:
    """Log the records that the open MLflow run lacks (kept by an earlier, interrupted
    process); returns the best feasible accuracy among ``history`` (-inf if none)."""
    logged = tracker.logged_steps() if history else set()
    best = float("-inf")
    for record in sorted(history, key=lambda r: r.index):
        if record.feasible:
            best = max(best, record.metrics["accuracy"])
        if record.index not in logged:
            tracker.log_episode(record, best_so_far=best, baseline=baseline)
    return best
