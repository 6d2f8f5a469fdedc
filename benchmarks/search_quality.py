"""Search quality of every method under equal evaluation budgets.

For each model x budget x method x seed, one search of ``--evaluations`` evaluations runs in
a fresh process (so its peak memory is its own) and reports:

* the best feasible policy's validation accuracy (BN-recalibrated, no fine-tune), the number
  the search optimised;
* its test accuracy after a ``--finetune-epochs`` fine-tune of the compressed model (the
  test split is touched only here);
* the search's wall time and peak RSS (this process, and its worker processes if any).

Results go to ``<out>/search_quality-<time>.json`` (one row per search) and ``.md`` (mean and
standard deviation over seeds). Budgets are ``KEY=VALUE`` targets, with ``@profile`` to
choose the hardware profile (default ``bitfusion``); a budget that a model cannot reach is
reported as an error row. Each search's run directory stays under ``--runs-dir``::

    python benchmarks/search_quality.py                      # the full study (hours)
    python benchmarks/search_quality.py --models demo --dataset digits \\
        --evaluations 6 --seeds 1 --methods random,uniform   # a smoke run (a minute)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_BUDGETS = ("flops=0.5", "latency=0.7@cpu")
"""On the ``cpu`` profile pruning alone reaches about 0.46 (vgg_small) and 0.37 (resnet20) of
the original latency; 0.7 leaves the search room to trade."""


@dataclass(frozen=True)
class RunSpec:
    """One search of the study."""

    model: str
    dataset: str
    budget: str
    method: str
    seed: int
    evaluations: int
    val_samples: int
    finetune_epochs: int
    mode: str
    runs_dir: str
    agent_options: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    from agents import method_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg_small,resnet20", help="comma-separated")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--budgets", nargs="+", default=list(DEFAULT_BUDGETS))
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(method_names()), help="comma-separated")
    parser.add_argument("--mode", default="prune", choices=["prune", "quantize", "joint"])
    parser.add_argument("--val-samples", type=int, default=1000)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="runs/benchmarks")
    parser.add_argument(
        "--agent-options", default="{}", help='JSON per method, e.g. {"ddpg": {"n_envs": 2}}'
    )
    return parser.parse_args(argv)


def config_of(spec: RunSpec) -> Any:
    """The search config of ``spec``."""
    from autoprune.config import SearchConfig

    target, _, profile = spec.budget.partition("@")
    return SearchConfig(
        model=spec.model,
        dataset=spec.dataset,
        agent=spec.method,
        mode=spec.mode,
        targets=(target,),
        profile=profile or "bitfusion",
        episodes=spec.evaluations,
        seed=spec.seed,
        val_samples=spec.val_samples,
        runs_dir=spec.runs_dir,
        agent_options=dict(spec.agent_options),
    )


def prepare_only(spec: RunSpec) -> None:
    """Train the baseline and build the latency table once, outside the measured runs."""
    from autoprune.session import prepare_search

    prepare_search(config_of(spec))


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One search and its fine-tuned test accuracy (runs in a fresh process)."""
    from agents import run_search
    from autoprune.session import prepare_search
    from autoprune.training import evaluate, finetune

    row: dict[str, Any] = asdict(spec)
    try:
        config = config_of(spec)
        session = prepare_search(config)
        started = time.perf_counter()
        result = run_search(config, session=session)
        row["search_seconds"] = time.perf_counter() - started
        data, best = session.data, result.best
        row["baseline_val_accuracy"] = session.evaluator.baseline_metrics["accuracy"]
        row["baseline_test_accuracy"] = evaluate(session.model, data.x_test, data.y_test)
        if best is not None:
            row["best_val_accuracy"] = best.metrics["accuracy"]
            row["best_budget_use"] = max(
                (v for k, v in best.metrics.items() if k.startswith("budget_use")), default=None
            )
            model = session.evaluator.compress(best.policy)
            finetune(model, data, spec.finetune_epochs, seed=spec.seed)
            row["test_accuracy_finetuned"] = evaluate(model, data.x_test, data.y_test)
    except Exception as exc:  # a failed search is a row of the report, not the end of it
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return row


def specs_of(args: argparse.Namespace) -> list[RunSpec]:
    """Every search of the study, in the order they run."""
    options = json.loads(args.agent_options)
    return [
        RunSpec(
            model=model,
            dataset=args.dataset,
            budget=budget,
            method=method,
            seed=seed,
            evaluations=args.evaluations,
            val_samples=args.val_samples,
            finetune_epochs=args.finetune_epochs,
            mode=args.mode,
            runs_dir=args.runs_dir,
            agent_options=options.get(method, {}),
        )
        for model in args.models.split(",")
        for budget in args.budgets
        for seed in range(args.seeds)
        for method in args.methods.split(",")
    ]


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds per model, budget and method."""
    lines = [
        "| model | budget | method | runs | best val acc % | test acc % (ft) | search s | "
        "peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["budget"], row["method"]), []).append(row)
    for (model, budget, method), group in groups.items():
        ok = [r for r in group if "error" not in r]

        def values(key: str, rows: list[dict[str, Any]] = ok) -> list[float]:
            return [r[key] for r in rows if r.get(key) is not None]

        rss = [r["peak_rss_mb"] + r["children_peak_rss_mb"] for r in ok]
        lines.append(
            f"| {model} | {budget} | {method} | {len(ok)}/{len(group)} | "
            f"{_mean_std(values('best_val_accuracy'), 100)} | "
            f"{_mean_std(values('test_accuracy_finetuned'), 100)} | "
            f"{_mean_std(values('search_seconds'), digits=0)} | {_mean_std(rss, digits=0)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the study and write the JSON and markdown reports."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"search_quality-{time.strftime('%Y%m%d-%H%M%S')}"
    rows: list[dict[str, Any]] = []
    spawn = multiprocessing.get_context("spawn")
    specs = specs_of(args)
    prepared = {(s.model, s.budget.partition("@")[2]): s for s in specs}
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        for spec in prepared.values():
            try:
                pool.submit(prepare_only, spec).result()
            except Exception as exc:  # the runs of this spec report it again as rows
                print(f"{spec.model} {spec.budget}: {type(exc).__name__}: {exc}", flush=True)
    for spec in specs:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            row = pool.submit(run_one, spec).result()
        rows.append(row)
        status = row.get("error") or (
            f"val {row.get('best_val_accuracy', float('nan')):.4f}  "
            f"test(ft) {row.get('test_accuracy_finetuned', float('nan')):.4f}  "
            f"{row['search_seconds']:.0f}s  {row['peak_rss_mb']:.0f} MB"
        )
        print(f"{spec.model} {spec.budget} {spec.method} seed {spec.seed}: {status}", flush=True)
        stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    stem.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
