"""The search's progress on the terminal (:class:`BarHooks`) and the search steps ``search``
and ``compare`` share, with those hooks; imported only when a search runs (it pulls in torch
and the search methods)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autoprune.cli._console import err_console, progress_bar
from autoprune.cli._resume import ContinueNote
from autoprune.cli._signals import hide_interrupted
from autoprune.core.results import SearchResult
from autoprune.core.training import ProgressFn
from autoprune.data import DataSplits
from autoprune.searches.search_run import (
    SearchHooks,
    SearchProgressFn,
    one_shot_budget,
    open_tracker,
    random_warmup,
    run_tags,
)
from autoprune.searches.search_run import check_agent as _check_agent
from autoprune.searches.search_run import execute as _execute
from autoprune.searches.search_run import prepare as _prepare
from autoprune.tracking import SearchTracker
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

__all__ = [
    "BarHooks",
    "check_agent",
    "execute",
    "one_shot_budget",
    "open_tracker",
    "prepare",
    "run_tags",
    "warn_random_only",
]


class BarHooks(SearchHooks):
    """Progress bars on stderr, warnings in yellow, the run name for the Ctrl-C note."""

    def __init__(self, note: ContinueNote | None = None) -> None:
        self.note = note

    def warn(self, message: str) -> None:
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    def random_only(self, config: SearchConfig, random_episodes: int, enough: int) -> None:
        self.warn(
            f"{config.agent} acts randomly for its first {random_episodes} episodes (warm-up), "
            f"so with --episodes {config.episodes} every action is random; pass --episodes "
            f"{enough} or more for it to learn"
        )

    def run_named(self, run_name: str) -> None:
        if self.note is not None:
            self.note.run_name = run_name

    @contextmanager
    def baseline(self, model: str) -> Iterator[ProgressFn]:
        with progress_bar(f"baseline {model}") as progress:
            task = progress.add_task("train", total=None, info="", visible=False)

            def on_batch(step: int, total: int, loss: float) -> None:
                progress.update(task, visible=True, completed=step, total=total, info=f"{loss:.3f}")

            yield on_batch

    @contextmanager
    def search(self, agent: str, total: int, done: int) -> Iterator[SearchProgressFn]:
        with progress_bar(f"search {agent}") as progress:
            task = progress.add_task("search", total=total, info="")
            progress.update(task, completed=done)

            def on_episode(completed: int, best: float) -> None:
                info = f"best acc {best:.2%}" if best > float("-inf") else ""
                progress.update(task, completed=completed, info=info)

            yield on_episode


def check_agent(name: str) -> None:
    """Fail fast on an unknown search method; a trial stopped by Ctrl-C logs no traceback."""
    hide_interrupted("optuna.study._optimize")
    _check_agent(name)


def warn_random_only(config: SearchConfig) -> None:
    """One warning line when the search ends before the method first learns, so that every
    action it takes is random (an RL warm-up, a sampler's start-up trials)."""
    warmup = random_warmup(config)
    if warmup is not None:
        BarHooks().random_only(config, *warmup)


def prepare(
    config: SearchConfig, data_dir: Path | None, data: DataSplits | None = None
) -> SearchSession:
    """:func:`autoprune.searches.search_run.prepare` with a progress bar while a baseline trains."""
    return _prepare(config, data_dir, data, BarHooks())


def execute(
    config: SearchConfig, session: SearchSession, tracker: SearchTracker, run_name: str
) -> tuple[SearchResult, dict[str, Path]]:
    """:func:`autoprune.searches.search_run.execute` with a progress bar."""
    return _execute(config, session, tracker, run_name, hooks=BarHooks())
