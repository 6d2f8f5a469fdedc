"""``autoprune search``: parse the flags, run :func:`autoprune.searches.search_run.tracked_search`
with progress bars, print the result."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from autoprune.cli._common import with_data_dir_env
from autoprune.cli._config_args import resolve_config
from autoprune.cli._console import err_console, progress_bar
from autoprune.cli._resume import ContinueNote
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

CONFIG = typer.Option(None, "--config", "-c", help="YAML config; flags override it.")
MODEL = typer.Option(None, "--model", "-m", help="Model (zoo name, file.py:fn, module:fn).")
WEIGHTS = typer.Option(None, "--weights", "-w", help="Trained state dict (default: baseline).")
DATASET = typer.Option(None, "--dataset", "-d", help="Dataset name, npz:PATH or file.py:fn.")
MODE = typer.Option(None, "--mode", help="prune | quantize | sparse | joint.")
TARGET = typer.Option(None, "--target", "-t", help="Budget KEY=VALUE (repeatable).")
REWARD = typer.Option(None, "--reward", help="accuracy | amc | mnas | weighted.")
EPISODES = typer.Option(None, "--episodes", "-n", help="Evaluations (episodes / trials).")
PROFILE = typer.Option(None, "--profile", "-p", help="Hardware profile name or YAML path.")
SEED = typer.Option(None, "--seed", help="Search seed.")
DATA_DIR = typer.Option(None, "--data-dir", help="Where the dataset files are.")
RUNS_DIR = typer.Option(None, "--runs-dir", help="Root of runs (default: runs).")
TRACKING = typer.Option(None, "--tracking-uri", help="MLflow URI (default: runs/mlflow).")
JSON_OUT = typer.Option(False, "--json", help="Print a machine-readable summary.")
WORKERS = typer.Option(
    None, "--workers", help="Episodes evaluated at once (environments / trials in flight)."
)
BACKEND = typer.Option(None, "--backend", help="Where workers run: local | ray.")
RAY_ADDRESS = typer.Option(
    None, "--ray-address", help="Ray cluster to join (HOST:PORT, ray://HOST:PORT, auto)."
)
WORKER_CPUS = typer.Option(None, "--worker-cpus", help="CPUs Ray reserves per worker.")
WORKER_GPUS = typer.Option(None, "--worker-gpus", help="GPUs Ray reserves per worker.")
STORAGE = typer.Option(
    None, "--storage", help="Optuna storage URL (default: sqlite under --runs-dir)."
)


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
    path = Path(runs_dir or "runs") / "searches" / run_name / "config.json"
    if not path.is_file():
        raise AutopruneError(
            f"no search named '{run_name}' under {path.parent.parent}; pass a run name "
            "listed there (or the --runs-dir it was started with)"
        )
    return path


def search_command(
    config_file: Path | None = CONFIG,
    model: str | None = MODEL,
    weights: str | None = WEIGHTS,
    dataset: str | None = DATASET,
    agent: str | None = typer.Option(None, "--agent", "-a", help="Search method."),
    mode: str | None = MODE,
    target: list[str] | None = TARGET,
    reward: str | None = REWARD,
    episodes: int | None = EPISODES,
    profile: str | None = PROFILE,
    seed: int | None = SEED,
    resume: str | None = typer.Option(None, "--resume", help="Run name to continue."),
    data_dir: Path | None = DATA_DIR,
    runs_dir: str | None = RUNS_DIR,
    tracking_uri: str | None = TRACKING,
    storage: str | None = STORAGE,
    workers: int | None = WORKERS,
    backend: str | None = BACKEND,
    ray_address: str | None = RAY_ADDRESS,
    worker_cpus: float | None = WORKER_CPUS,
    worker_gpus: float | None = WORKER_GPUS,
    as_json: bool = JSON_OUT,
) -> None:
    """Search per-layer pruning ratios / bit-widths under a budget (default: a demo search)."""
    if resume is not None and config_file is None:
        config_file = _saved_config(runs_dir, resume)
    config = resolve_config(
        config_file,
        model=model,
        weights=weights,
        dataset=dataset,
        agent=agent,
        mode=mode,
        targets=target,
        reward=reward,
        episodes=episodes,
        profile=profile,
        seed=seed,
        runs_dir=runs_dir,
        tracking_uri=tracking_uri,
        storage=storage,
        workers=workers,
        backend=backend,
        ray_address=ray_address,
        worker_cpus=worker_cpus,
        worker_gpus=worker_gpus,
        data_dir=str(data_dir) if data_dir else None,
    )
    from agents import check_scale_out

    check_scale_out(config)  # before any slow work or write
    config = with_data_dir_env(config)
    hide_interrupted("optuna.study._optimize")  # a trial stopped by Ctrl-C is no failure
    with ContinueNote(None if config.runs_dir == "runs" else config.runs_dir) as note:
        done = tracked_search(
            config,
            episodes_given=episodes is not None,
            data_dir=data_dir,
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
