"""``autoprune compare``: several search methods, equal budget, one table and one parent run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import typer
from rich.table import Table

from autoprune.cli._common import with_data_dir_env
from autoprune.cli._console import console, print_table
from autoprune.cli._options import JSON_OUT
from autoprune.cli._search_flags import SearchFlags, with_search_flags
from autoprune.cli._search_hooks import (
    check_agent,
    execute,
    one_shot_budget,
    open_tracker,
    prepare,
    run_tags,
    warn_random_only,
)
from autoprune.cli._units import metric_label
from autoprune.core.errors import AutopruneError
from autoprune.core.results import SearchResult
from autoprune.cost import HardwareProfile, load_profile
from autoprune.searches.preflight import preflight
from autoprune.system.atomic_dir import write_atomic
from autoprune.tracking import best_values, provenance_params
from autoprune.tracking.plots import plot_comparison
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession


@with_search_flags
def compare_command(
    agents: str = typer.Option(
        "ddpg,tpe,random,uniform", "--agents", help="Comma-separated search methods."
    ),
    *,
    flags: SearchFlags,
    as_json: bool = JSON_OUT.option,
) -> None:
    """Run several search methods on the same evaluation path and budget; compare them."""
    names = [a.strip() for a in agents.split(",") if a.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise AutopruneError(
            f"--agents '{agents}' must name two or more different methods, e.g. ddpg,tpe,random"
        )
    for name in names:
        check_agent(name)
    base = flags.config()
    base = with_data_dir_env(base)
    from agents import check_scale_out

    check_scale_out(base)  # before any slow work or write
    configs = [one_shot_budget(base.replace(agent=name), None) for name in names]
    data = preflight(configs, flags.data_dir)  # before any training, run folder or MLflow run
    for config in configs:
        warn_random_only(config)
    from agents import run_name_for

    parent_name = run_name_for(base.replace(agent="compare"))
    tracker = open_tracker(base, parent_name)
    session = prepare(base, flags.data_dir, data)
    from agents import check_search

    for name in names:
        check_search(one_shot_budget(base.replace(agent=name), None), session)
    results: dict[str, SearchResult] = {}
    parent_tags = {**run_tags(base), "agent": "compare", "agents": ",".join(names)}
    with tracker.start(parent_params(base, names, session), parent_tags) as parent_id:
        for name in names:
            config = one_shot_budget(base.replace(agent=name), None)
            child_name = f"{parent_name}__{name}"
            child_params = {"agent": name, "episodes": config.episodes}
            with tracker.start_child(name, child_params, run_tags(config)):
                results[name], _ = execute(config, session, tracker, child_name)
        tracker.log_params(best_params(results))
        out_dir = base.runs_path / "searches" / parent_name
        plot = plot_comparison(results, out_dir / "comparison.png")
        tracker.log_artifact(plot)
        rows = _rows(results)
        write_atomic(out_dir / "comparison.json", json.dumps(rows, indent=2))
        tracker.log_artifact(out_dir / "comparison.json")
        tracker.log_artifact(_write_csv(rows, out_dir / "comparison.csv"))
    if as_json:
        print(json.dumps({"run_id": parent_id, "rows": rows}, indent=2))
        return
    print_table(_table(base, rows, load_profile(base.profile)))
    console.print(f"MLflow parent run: {parent_id}; plot: {plot}", soft_wrap=True)


def parent_params(
    base: SearchConfig, names: list[str], session: SearchSession
) -> dict[str, object]:
    """Params of a compare parent run: the shared configuration without ``agent`` (each
    child has its own), ``agents`` (the methods compared, in order) and ``provenance.*``."""
    config = {k: v for k, v in base.to_dict().items() if k != "agent"}
    return {**config, "agents": ",".join(names), **provenance_params(session.weights_path)}


def best_params(results: dict[str, SearchResult]) -> dict[str, str]:
    """Each method's best feasible episode as parent params ``best_<value>.<agent>`` (e.g.
    ``best_accuracy.ddpg``, ``best_budget_use_macs.tpe``), so the parent's page lists the
    methods side by side; ``best_found.<agent>`` is false for a method that met no budget."""
    params: dict[str, str] = {}
    for name, result in results.items():
        values = best_values(result)
        params[f"best_found.{name}"] = "true" if values else "false"
        params.update({f"best_{k}.{name}": f"{v:.6g}" for k, v in values.items()})
    return dict(sorted(params.items()))


def _write_csv(rows: list[dict[str, float | str | None]], path: Path) -> Path:
    """The comparison rows as CSV (the MLflow UI shows a ``.csv`` artifact as a table)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, text.getvalue())


def _table(
    base: SearchConfig, rows: list[dict[str, float | str | None]], profile: HardwareProfile
) -> Table:
    """One row per method; latency and energy with their unit, profile and ratio."""
    title = f"{base.model}: {', '.join(base.targets)}, {base.episodes} evaluations"
    caption = (
        f"{metric_label('latency', profile)}, {metric_label('energy', profile)}: "
        "the best policy's (its ratio to the original)"
    )
    table = Table(title=title, caption=caption)
    headers = ("agent", "best acc", "acc drop", "macs ratio", "latency ms", "energy mJ")
    for column in (*headers, "seconds"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        table.add_row(
            str(row["agent"]),
            _pct(row.get("accuracy")),
            _pct(row.get("accuracy_drop")),
            _ratio(row.get("macs_ratio")),
            _cost(row.get("latency_ms"), row.get("latency_ratio")),
            _cost(row.get("energy_mj"), row.get("energy_ratio")),
            f"{row['seconds']:.0f}",
        )
    return table


def _rows(results: dict[str, SearchResult]) -> list[dict[str, float | str | None]]:
    rows: list[dict[str, float | str | None]] = []
    for name, result in results.items():
        best, base = result.best, result.baseline_metrics
        row: dict[str, float | str | None] = {"agent": name, "seconds": result.seconds}
        if best is not None:
            row["accuracy"] = best.metrics["accuracy"]
            row["accuracy_drop"] = base["accuracy"] - best.metrics["accuracy"]
            for key in ("macs", "latency", "energy", "size"):
                row[f"{key}_ratio"] = best.metrics[key] / base[key] if base[key] else None
            row["latency_ms"], row["energy_mj"] = best.metrics["latency"], best.metrics["energy"]
        rows.append(row)
    return rows


def _pct(value: float | str | None) -> str:
    return "-" if not isinstance(value, float) else f"{value:.2%}"


def _ratio(value: float | str | None) -> str:
    return "-" if not isinstance(value, float) else f"{value:.3f}x"


def _cost(value: float | str | None, ratio: float | str | None) -> str:
    """The best policy's cost and its ratio to the original, e.g. ``0.0145 (0.386x)``."""
    if not isinstance(value, float):
        return "-"
    return f"{value:.4g}" + ("" if not isinstance(ratio, float) else f" ({ratio:.3f}x)")


def register(app: typer.Typer) -> None:
    """Add ``compare`` to ``app``."""
    app.command("compare")(compare_command)
