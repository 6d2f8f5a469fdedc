"""``autoprune search``: parse the flags, run :func:`autoprune.searches.search_run.tracked_search`
with progress bars, print the result."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from autoprune.cli._options import JSON_OUT, Flag
from autoprune.cli._search_flags import AGENT, SearchFlags, with_search_flags
from autoprune.core.errors import AutopruneError
from autoprune.system.paths import child_path
from autoprune.workflow.config import SearchConfig

RESUME = Flag(("--resume",), "Run name to continue.", shown="a new search").option


def _saved_config(runs_dir: str | None, run_name: str) -> Path:
    """The config a run was started with, so ``--resume RUN`` needs no other flag."""
    path = (
        child_path(Path(runs_dir or SearchConfig.runs_dir) / "searches", run_name) / "config.json"
    )
    if not path.is_file():
        raise AutopruneError(
            f"no search named '{run_name}' under {path.parent.parent}; pass a run name "
            "listed there (or the --runs-dir it was started with)"
        )
    return path


@with_search_flags
def search_command(
    agent: str | None = AGENT,
    *,
    flags: SearchFlags,
    resume: str | None = RESUME,
    as_json: bool = JSON_OUT.option,
) -> None:
    """Search per-layer pruning ratios / bit-widths under a budget (default: a demo search)."""
    if resume is not None and flags.config_file is None:
        flags = replace(flags, config_file=_saved_config(flags.runs_dir, resume))
    config = flags.config(agent=agent)
    from agents import check_scale_out
    from autoprune.cli._common import with_data_dir_env
    from autoprune.cli._console import err_console
    from autoprune.cli._resume import ContinueNote
    from autoprune.cli._search_hooks import BarHooks
    from autoprune.cli._search_report import print_result
    from autoprune.cli._signals import hide_interrupted
    from autoprune.cost import load_profile
    from autoprune.searches.finished_search import SearchFinished
    from autoprune.searches.search_run import tracked_search

    check_scale_out(config)  # before any slow work or write
    config = with_data_dir_env(config)
    hide_interrupted("optuna.study._optimize")  # a trial stopped by Ctrl-C is no failure
    default_runs = config.runs_dir == SearchConfig.runs_dir
    try:
        with ContinueNote(None if default_runs else config.runs_dir) as note:
            done = tracked_search(
                config,
                episodes_given=flags.episodes is not None,
                data_dir=flags.data_dir,
                resume=resume,
                hooks=BarHooks(note),
            )
    except SearchFinished as finished:  # nothing to resume: the run is left as it is
        err_console.print(str(finished), highlight=False, soft_wrap=True, markup=False)
        return
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
