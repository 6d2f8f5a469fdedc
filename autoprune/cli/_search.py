"""``autoprune search``: parse the flags, run :func:`autoprune.searches.search_run.tracked_search`
with progress bars, print the result."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import typer

from autoprune.cli._common import with_data_dir_env
from autoprune.cli._console import err_console, progress_bar
from autoprune.cli._options import JSON_OUT
from autoprune.cli._resume import ContinueNote
from autoprune.cli._search_flags import SearchFlags, with_search_flags
from autoprune.cli._search_report import print_result
from autoprune.cli._signals import hide_interrupted
from autoprune.core.errors import AutopruneError
from autoprune.core.results import SearchResult
from autoprune.core.training import ProgressFn
from autoprune.cost import load_profile
from autoprune.data import DataSplits
from autoprune.searches.search_run import (
    SearchHooks,
    SearchProgressFn,
    one_shot_budget,
    open_tracker,
    random_warmup,
    run_tags,
    tracked_search,
)
from autoprune.searches.search_run import check_agent as _check_agent
from autoprune.searches.search_run import execute as _execute
from autoprune.searches.search_run import prepare as _prepare
from autoprune.tracking import SearchTracker
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

__all__ = ["check_agent", "execute", "one_shot_budget", "open_tracker", "prepare", "run_tags"]


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


def _saved_config(runs_dir: str | None, run_name: str) -> Path:
    """The config a run was started with, so ``--resume RUN`` needs no other flag."""
    path = Path(runs_dir or SearchConfig.runs_dir) / "searches" / run_name / "config.json"
    if not path.is_file():
        raise AutopruneError(
            f"no search named '{run_name}' under {path.parent.parent}; pass a run name "
            "listed there (or the --runs-dir it was started with)"
        )
    return path


@with_search_flags
def search_command(
    agent: str | None = typer.Option(None, "--agent", "-a", help="Search method."),
    *,
    flags: SearchFlags,
    resume: str | None = typer.Option(None, "--resume", help="Run name to continue."),
    as_json: bool = JSON_OUT.option,
) -> None:
    """Search per-layer pruning ratios / bit-widths under a budget (default: a demo search)."""
    if resume is not None and flags.config_file is None:
        flags = replace(flags, config_file=_saved_config(flags.runs_dir, resume))
    config = flags.config(agent=agent)
    from agents import check_scale_out

    check_scale_out(config)  # before any slow work or write
    config = with_data_dir_env(config)
    hide_interrupted("optuna.study._optimize")  # a trial stopped by Ctrl-C is no failure
    default_runs = config.runs_dir == SearchConfig.runs_dir
    with ContinueNote(None if default_runs else config.runs_dir) as note:
        done = tracked_search(
            config,
            episodes_given=flags.episodes is not None,
            data_dir=flags.data_dir,
            resume=resume,
            hooks=BarHooks(note),
        )
    print_result(
        done.result,
        done.files,
        done.run_id,
        as_json,
        weights=done.session.weights_path,
        profile=load_profile(config.profile),
    )


def register(app: typer.Typer) -> None:
    """Add ``search`` to ``app``."""
    app.command("search")(search_command)
