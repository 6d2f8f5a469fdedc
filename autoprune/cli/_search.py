"""``autoprune search`` and ``autoprune compare``: run searches, track them, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from autoprune.cli._config_args import resolve_config
from autoprune.cli._console import console, err_console, progress_bar
from autoprune.cli._tracking import tracking_location
from autoprune.config import SearchConfig
from autoprune.errors import AutopruneError, unknown_name
from autoprune.results import EpisodeRecord, SearchResult
from autoprune.session import SearchSession, prepare_search
from autoprune.tracking import SearchTracker, git_sha

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


def check_agent(name: str) -> None:
    """Fail fast on an unknown search method."""
    import optuna

    from agents import method_names

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI shows its own progress
    if name not in method_names():
        raise unknown_name("agent", name, method_names())


def one_shot_budget(config: SearchConfig, episodes: int | None) -> SearchConfig:
    """One-shot methods (admm, deep-compression) spend a fixed number of evaluations."""
    from agents import method_class

    fixed = method_class(config.agent).fixed_evaluations
    if fixed is not None and episodes is None:
        return config.replace(episodes=fixed)
    return config


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
        "git_sha": git_sha(),
    }


def prepare(config: SearchConfig, data_dir: Path | None) -> SearchSession:
    """prepare_search with a progress bar while a missing baseline trains."""
    with progress_bar(f"baseline {config.model}") as progress:
        task = progress.add_task("train", total=None, info="", visible=False)

        def on_batch(step: int, total: int, loss: float) -> None:
            progress.update(task, visible=True, completed=step, total=total, info=f"{loss:.3f}")

        return prepare_search(config, data_dir=data_dir, on_batch=on_batch)


def execute(
    config: SearchConfig,
    session: SearchSession,
    tracker: SearchTracker,
    run_name: str,
    resume: str | None = None,
) -> tuple[SearchResult, dict[str, Path]]:
    """Run one search inside an open tracker run and write its result files."""
    from agents import run_search

    best = [float("-inf")]
    logged: list[int] = []
    with progress_bar(f"search {config.agent}") as progress:
        task = progress.add_task("search", total=config.episodes, info="")

        def on_record(record: EpisodeRecord) -> None:
            logged.append(record.index)
            if record.feasible:
                best[0] = max(best[0], record.metrics["accuracy"])
            tracker.log_episode(record, best_so_far=best[0])
            progress.update(
                task,
                completed=record.index + 1,
                info=f"best acc {best[0]:.2%}" if best[0] > float("-inf") else "",
            )

        result = run_search(
            config, session=session, on_record=on_record, resume=resume, run_name=run_name
        )
    if resume is not None:  # records from before the interruption go to the new MLflow run
        fresh, running = set(logged), float("-inf")
        for record in sorted(result.history, key=lambda r: r.index):
            if record.feasible:
                running = max(running, record.metrics["accuracy"])
            if record.index not in fresh:
                tracker.log_episode(record, best_so_far=running)
    out_dir = config.runs_path / "searches" / run_name
    files = tracker.log_result(result, out_dir)
    if result.best is not None:
        files.update(_save_best_model(session, result, out_dir, tracker))
    return result, files


def _save_best_model(
    session: SearchSession, result: SearchResult, out_dir: Path, tracker: SearchTracker
) -> dict[str, Path]:
    """The best policy's compressed (not fine-tuned) model as ``.apz``, logged to MLflow."""
    from autoprune.apply import finalize_and_code

    assert result.best is not None
    model = session.evaluator.compress(result.best.policy)
    path = out_dir / "best_model.apz"
    names = [s.name for s in session.evaluator.specs]
    finalize_and_code(model, names, path, {"policy": result.best.policy.to_dict()})
    tracker.log_model_file(path)
    return {"best_model": path}


def print_result(result: SearchResult, files: dict[str, Path], run_id: str, as_json: bool) -> None:
    """Best policy, its metrics and where everything is."""
    best = result.best
    summary = {
        "run_id": run_id,
        "method": result.method,
        "evaluations": len(result.history),
        "seconds": round(result.seconds, 2),
        "baseline": result.baseline_metrics,
        "best": None
        if best is None
        else {
            "index": best.index,
            "reward": best.reward,
            "metrics": best.metrics,
            "policy": best.policy.to_dict()["layers"],
        },
        "files": {k: str(v) for k, v in files.items()},
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    if best is None:
        console.print("[yellow]no feasible policy was found[/]")
        return
    table = Table(title=f"best policy ({result.method}, episode {best.index})")
    for column in ("layer", "keep", "w bits", "a bits", "sparsity"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for name, lp in best.policy.layers.items():
        table.add_row(
            name, f"{lp.keep_ratio:.2f}", _bits(lp.w_bits), _bits(lp.a_bits), f"{lp.sparsity:.2f}"
        )
    console.print(table)
    base = result.baseline_metrics
    metrics = Table(title="metrics (validation accuracy; predicted costs)")
    for column in ("metric", "original", "best", "ratio"):
        metrics.add_column(column, justify="left" if column == "metric" else "right")
    for key in ("accuracy", "macs", "params", "size", "latency", "energy"):
        if key in best.metrics and key in base:
            ratio = best.metrics[key] / base[key] if base[key] else float("nan")
            metrics.add_row(key, f"{base[key]:.4g}", f"{best.metrics[key]:.4g}", f"{ratio:.3f}")
    console.print(metrics)
    console.print(f"MLflow run: {run_id}   (dashboard: autoprune ui)")
    console.print(f"results:    {_run_folder(files)}")
    console.print(f"policy:     {files.get('best_policy.json', '-')}")


def _run_folder(files: dict[str, Path]) -> Path | str:
    summary = files.get("summary.json")
    return summary.parent if summary is not None else ""


def _bits(bits: int) -> str:
    return "fp32" if bits == 32 else str(bits)


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
        data_dir=str(data_dir) if data_dir else None,
    )
    check_agent(config.agent)
    config = one_shot_budget(config, episodes)
    if config.weights is not None and not Path(config.weights).is_file():
        raise AutopruneError(
            f"weights file {config.weights} does not exist; pass a state dict saved with "
            "torch.save(model.state_dict(), PATH) or omit --weights to train a baseline"
        )
    from agents import run_name_for

    run_name = resume or run_name_for(config)
    tracker = open_tracker(config, run_name)
    session = prepare(config, data_dir)
    from agents import check_search

    check_search(config, session)
    with tracker.start(config.to_dict(), run_tags(config)) as run_id:
        result, files = execute(config, session, tracker, run_name, resume)
    print_result(result, files, run_id, as_json)


def register(app: typer.Typer) -> None:
    """Add ``search`` to ``app``."""
    app.command("search")(search_command)
    _ = err_console
