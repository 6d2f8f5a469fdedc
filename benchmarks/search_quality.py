"""Search quality of every method under equal evaluation budgets.

For each model x budget x method x seed, one search of ``--evaluations`` evaluations runs in
a fresh process (so its peak memory is its own) and reports:

* the best feasible policy's validation accuracy (the search's own evaluation: pruned,
  BatchNorm and least-squares recovery, no fine-tune), the number the search optimised;
* for the RL methods, the validation accuracy of the *learned* policy (the deterministic
  actor after training, the search's last evaluation) and of the best warm-up sample;
* the best policy's test accuracy without fine-tuning (``apply`` without training) and
  after the same ``--finetune-epochs`` fine-tune for every method (the one ``apply`` does:
  distillation from the original, lr 0.01); for RL also the test accuracy (no fine-tune)
  of the learned policy and of the best warm-up sample, which compares them without the
  upward bias of a maximum over noisy validation scores; the test split is touched only
  here;
* the search's wall time, seconds per episode and peak RSS (this process, and its worker
  processes if any).

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

DEFAULT_BUDGETS = ("flops=0.5", "latency=0.6@cpu")
"""Half the MACs, and 60% of the latency measured on this CPU (the ``cpu`` profile)."""
DEFAULT_METHODS = "ddpg,sac,ppo,tpe,random,uniform"


@dataclass(frozen=True)
class RunSpec:
    """One search of the study."""

    model: str
    dataset: str
    budget: str
    method: str
    seed: int
    evaluations: int
    val_samples: int | None
    finetune_epochs: int
    mode: str
    runs_dir: str
    agent_options: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default="vgg_small,resnet20,mobilenetv2_small", help="comma-separated"
    )
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--budgets", nargs="+", default=list(DEFAULT_BUDGETS))
    parser.add_argument("--evaluations", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated")
    parser.add_argument("--mode", default="prune", choices=["prune", "quantize", "sparse", "joint"])
    parser.add_argument(
        "--val-samples", type=int, default=None, help="default: the search's default"
    )
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results/search_quality")
    parser.add_argument(
        "--continue", dest="resume", default=None, help="a results JSON: run only what it lacks"
    )
    parser.add_argument(
        "--agent-options", default="{}", help='JSON per method, e.g. {"ddpg": {"n_envs": 2}}'
    )
    return parser.parse_args(argv)


def config_of(spec: RunSpec) -> Any:
    """The search config of ``spec``."""
    from autoprune.workflow.config import SearchConfig

    target, _, profile = spec.budget.partition("@")
    config = SearchConfig(
        model=spec.model,
        dataset=spec.dataset,
        agent=spec.method,
        mode=spec.mode,
        targets=(target,),
        profile=profile or "bitfusion",
        episodes=spec.evaluations,
        seed=spec.seed,
        runs_dir=spec.runs_dir,
        agent_options=dict(spec.agent_options),
    )
    return config.replace(val_samples=spec.val_samples)


def prepare_only(spec: RunSpec) -> None:
    """Train the baseline and build the latency table once, outside the measured runs."""
    from autoprune.workflow.session import prepare_search

    prepare_search(config_of(spec))


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One search and its test accuracies (runs in a fresh process)."""
    from agents import run_search
    from autoprune.core.training import finetune, top1_accuracy
    from autoprune.workflow.session import prepare_search

    row: dict[str, Any] = asdict(spec)
    try:
        config = config_of(spec)
        session = prepare_search(config)
        started = time.perf_counter()
        result = run_search(config, session=session)
        row["search_seconds"] = time.perf_counter() - started
        row["seconds_per_episode"] = row["search_seconds"] / len(result.history)
        data, best = session.data, result.best
        row["baseline_val_accuracy"] = session.evaluator.baseline_metrics["accuracy"]
        row["baseline_test_accuracy"] = top1_accuracy(session.model, data.x_test, data.y_test)
        row.update(_phases(result.history))
        for key, record in _unbiased(result.history).items():
            model = session.evaluator.compress(record.policy)
            row[key] = top1_accuracy(model, data.x_test, data.y_test)
        if best is not None:
            row["best_index"] = best.index
            row["best_val_accuracy"] = best.metrics["accuracy"]
            row["best_budget_use"] = max(
                (v for k, v in best.metrics.items() if k.startswith("budget_use")), default=None
            )
            row["best_policy"] = {n: lp.keep_ratio for n, lp in best.policy.layers.items()}
            model = session.evaluator.compress(best.policy)
            row["test_accuracy"] = top1_accuracy(model, data.x_test, data.y_test)
            if spec.finetune_epochs:
                finetune(model, data, spec.finetune_epochs, teacher=session.model, seed=spec.seed)
                row["test_accuracy_finetuned"] = top1_accuracy(
                    model.eval(), data.x_test, data.y_test
                )
    except Exception as exc:  # a failed search is a row of the report, not the end of it
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return row


def _unbiased(history: list[Any]) -> dict[str, Any]:
    """The learned policy and the best warm-up sample, to score on the test split.

    The best of many noisy validation scores is biased upward (the winner's curse); the test
    split compares the two fairly.
    """
    out = {}
    learned = [r for r in history if r.policy.meta.get("learned")]
    warmup = [r for r in history if r.policy.meta.get("warmup") and r.feasible]
    if learned:
        out["learned_test_accuracy"] = learned[-1]
    if warmup:
        out["best_warmup_test_accuracy"] = max(warmup, key=lambda r: r.metrics["accuracy"])
    return out


def _phases(history: list[Any]) -> dict[str, Any]:
    """Validation accuracy of the learned policy and of the best warm-up sample (RL only)."""
    out: dict[str, Any] = {}
    learned = [r for r in history if r.policy.meta.get("learned")]
    warmup = [r for r in history if r.policy.meta.get("warmup") and r.feasible]
    if learned:
        out["learned_val_accuracy"] = learned[-1].metrics["accuracy"]
    if warmup:
        out["best_warmup_val_accuracy"] = max(r.metrics["accuracy"] for r in warmup)
        out["warmup_episodes"] = len([r for r in history if r.policy.meta.get("warmup")])
    return out


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


COLUMNS = (
    ("best val %", "best_val_accuracy", 100, 2),
    ("learned val %", "learned_val_accuracy", 100, 2),
    ("best warm-up val %", "best_warmup_val_accuracy", 100, 2),
    ("test % (no ft)", "test_accuracy", 100, 2),
    ("learned test % (no ft)", "learned_test_accuracy", 100, 2),
    ("best warm-up test % (no ft)", "best_warmup_test_accuracy", 100, 2),
    ("test % (ft)", "test_accuracy_finetuned", 100, 2),
    ("search s", "search_seconds", 1, 0),
    ("s / episode", "seconds_per_episode", 1, 2),
)


def markdown(rows: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds per model, budget and method."""
    header = ["model", "budget", "method", "runs", *(c[0] for c in COLUMNS), "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["budget"], row["method"]), []).append(row)
    for (model, budget, method), group in groups.items():
        ok = [r for r in group if "error" not in r]
        cells = [model, budget, method, f"{len(ok)}/{len(group)}"]
        for _, key, scale, digits in COLUMNS:
            values = [r[key] for r in ok if r.get(key) is not None]
            cells.append(_mean_std(values, scale, digits))
        rss = [r["peak_rss_mb"] + _workers_rss(r) for r in ok]
        cells.append(_mean_std(rss, digits=0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the study and write the JSON and markdown reports."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"search_quality-{time.strftime('%Y%m%d-%H%M%S')}"
    rows: list[dict[str, Any]] = []
    if args.resume:
        stem = Path(args.resume).with_suffix("")
        rows = [r for r in json.loads(Path(args.resume).read_text()) if "error" not in r]
    done = {_key(r) for r in rows}
    spawn = multiprocessing.get_context("spawn")
    specs = [s for s in specs_of(args) if _key(asdict(s)) not in done]
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


def _workers_rss(row: dict[str, Any]) -> float:
    """Peak RSS of worker processes, for methods that run some (else 0: short-lived helper
    processes such as a ``git`` call would be counted otherwise)."""
    options = row.get("agent_options", {})
    parallel = options.get("n_envs", 1) > 1 or options.get("n_workers", 1) > 1
    return row["children_peak_rss_mb"] if parallel else 0.0


def _key(row: dict[str, Any]) -> tuple:
    """What identifies one search of the study."""
    return (row["model"], row["budget"], row["method"], row["seed"], row["evaluations"])


if __name__ == "__main__":
    main()
