"""Compression under a model-size budget: ADMM (Yang et al. 2020) vs Deep Compression.

For each model and budget (a fraction 1/R of the float32 weights, counted as Yang et al. do:
Σ bits × nonzeros), runs

* ``admm`` — joint sparsity + k-means bits by ADMM (:func:`autoprune.admm.admm_compress`);
* ``admm-storage`` — the same, but the budget also counts a relative index per kept weight
  (5 bits fc, 8 bits conv) and float32 codebooks, i.e. most of what the file stores;
* ``deep-compression`` — Deep Compression with 8-bit conv / 5-bit fc codebooks, per-layer
  sparsities from the sensitivity scan (or the paper with ``--dc-allocation paper``), all
  densities scaled by one factor until Σ bits × kept fits the budget;
* optionally ``--rl-agent NAME`` — ``agents.run_search`` in joint mode with the target
  ``size=<budget>B`` (the cost model's size, which also counts indices and codebooks, so it
  is stricter), its best policy fine-tuned and coded by ``autoprune.apply.apply_policy``;

and reports test accuracy, Yang's count and the real ``.apz`` file size side by side.

Usage:
    python benchmarks/size_budget.py [--models lenet300,lenet5] [--ratios 40,100,200]
        [--methods admm,admm-storage,deep-compression] [--admm-epochs 6] [--finetune-epochs 3]
        [--dc-prune-epochs 8] [--dc-quant-epochs 2] [--dc-allocation scan|paper]
        [--rl-agent ddpg --rl-episodes 40] [--runs-dir runs]
        [--out benchmarks/results/size_budget.json]

Smoke run (a couple of minutes): ``--models lenet300 --ratios 100 --admm-epochs 1
--finetune-epochs 1 --dc-prune-epochs 1 --dc-quant-epochs 1``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from autoprune.admm import AdmmConfig, admm_compress
from autoprune.baseline import Baseline, BaselineRequest, train_baseline
from autoprune.coding import ApzReport, inspect_apz
from autoprune.data import DataSplits, load_dataset
from autoprune.deep_compression import (
    DeepCompressionConfig,
    deep_compress,
    sensitivity_scan,
    targets_for_budget,
)
from autoprune.errors import AutopruneError
from autoprune.specs import LayerSpec, discover_layers
from autoprune.training import DEFAULT_TRAIN, TrainConfig, evaluate

PAPER_TARGETS = {
    "lenet300": {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74},
    "lenet5": {"conv1": 0.34, "conv2": 0.88, "fc1": 0.92, "fc2": 0.81},
}
"""Deep Compression's per-layer sparsities (Han et al. 2016, Table 2): the paper allocation."""


def load_trained(name: str, data: DataSplits, runs_dir: Path, epochs: int | None) -> Baseline:
    """The cached baseline of ``name`` (the zoo's default training unless ``epochs``)."""
    config = DEFAULT_TRAIN.get(name, TrainConfig())
    if epochs is not None:
        config = replace(config, epochs=epochs)
    return train_baseline(BaselineRequest(name, data.name, config), data, runs_dir / "checkpoints")


def _row(method: str, model: nn.Module, data: DataSplits, report: ApzReport, extra: dict) -> dict:
    return {
        "method": method,
        "test_acc": round(100 * evaluate(model, data.x_test, data.y_test), 2),
        "yang_bytes": report.yang_bytes,
        "yang_x": round(report.yang_ratio, 1),
        "apz_bytes": report.file_bytes,
        "apz_x": round(report.compression_ratio, 1),
        **extra,
    }


def run_admm(
    model: nn.Module,
    data: DataSplits,
    budget: float,
    folder: Path,
    args: argparse.Namespace,
    storage: bool = False,
) -> dict:
    """ADMM at a budget of ``budget`` bytes (Yang's count, or with indices and codebooks)."""
    index = None
    if storage:
        specs = discover_layers(model, data.input_shape)
        index = {s.name: 5 if s.kind == "linear" else 8 for s in specs}
    config = AdmmConfig(
        epochs=args.admm_epochs,
        finetune_epochs=args.finetune_epochs,
        index_bits=index,
        codebook_bits=32 if storage else 0,
        seed=args.seed,
    )
    result = admm_compress(model, data, budget, config)
    method = "admm-storage" if storage else "admm"
    report = result.write_apz(folder / f"{method}.apz")
    bits = {n: lp.w_bits for n, lp in result.policy.layers.items()}
    return _row(method, result.model, data, report, {"bits": bits})


def dc_targets(
    name: str,
    model: nn.Module,
    data: DataSplits,
    specs: list[LayerSpec],
    budget: float,
    args: argparse.Namespace,
) -> tuple[dict[str, float], dict[str, int]]:
    """Deep Compression's per-layer sparsities scaled to the budget, and its bit-widths."""
    bits = {s.name: 5 if s.kind == "linear" else 8 for s in specs}
    if args.dc_allocation == "paper" and name in PAPER_TARGETS:
        base = PAPER_TARGETS[name]
    else:
        x, y = data.x_val[:2000], data.y_val[:2000]
        base = sensitivity_scan(model, x, y, list(bits)).targets(args.tolerance)
        base = {n: min(s, 0.99) for n, s in base.items()}
    counts = {s.name: s.weight_count for s in specs}
    return targets_for_budget(counts, bits, 8 * budget, base), bits


def run_dc(
    name: str,
    model: nn.Module,
    data: DataSplits,
    budget: float,
    folder: Path,
    args: argparse.Namespace,
) -> dict:
    """Deep Compression with densities scaled to a Yang budget of ``budget`` bytes."""
    specs = discover_layers(model, data.input_shape)
    targets, bits = dc_targets(name, model, data, specs, budget, args)
    config = DeepCompressionConfig(
        targets=targets,
        prune_epochs=args.dc_prune_epochs,
        quant_epochs=args.dc_quant_epochs,
        layout="auto",
        seed=args.seed,
    )
    result = deep_compress(model, data, config)
    report = result.write_apz(folder / "deep_compression.apz")
    return _row("deep-compression", result.model, data, report, {"bits": bits})


def run_rl(
    name: str, data: DataSplits, budget: float, folder: Path, args: argparse.Namespace
) -> dict:
    """An RL search in joint mode at ``size=<budget>B``, then fine-tune and code its policy."""
    from agents import run_search
    from autoprune.apply import apply_policy
    from autoprune.config import SearchConfig
    from autoprune.session import prepare_search

    config = SearchConfig(
        model=name,
        dataset=data.name,
        agent=args.rl_agent,
        mode="joint",
        targets=(f"size={budget:.0f}B",),
        episodes=args.rl_episodes,
        runs_dir=args.runs_dir,
        seed=args.seed,
    )
    session = prepare_search(config)
    try:
        best = run_search(config, session=session).best
    except AutopruneError as exc:  # e.g. a budget joint mode cannot reach without sparsity
        return {"method": args.rl_agent, "error": str(exc)}
    if best is None:
        return {"method": args.rl_agent, "error": "no feasible policy"}
    applied = apply_policy(
        session.model,
        best.policy,
        data,
        session.evaluator.cost_model,
        folder / args.rl_agent,
        finetune_epochs=args.finetune_epochs,
    )
    report = inspect_apz(applied.files["apz"])
    return _row(args.rl_agent, applied.model, data, report, {})


def run_budget(
    name: str, baseline: Baseline, data: DataSplits, ratio: float, args: argparse.Namespace
) -> list[dict]:
    """Every method at one budget."""
    specs = discover_layers(baseline.model, data.input_shape)
    budget = 4.0 * sum(s.weight_count for s in specs) / ratio
    folder = Path(args.runs_dir) / "benchmarks" / "size_budget" / f"{name}_{ratio:g}x"
    folder.mkdir(parents=True, exist_ok=True)
    runners = {
        "admm": lambda: run_admm(baseline.model, data, budget, folder, args),
        "admm-storage": lambda: run_admm(baseline.model, data, budget, folder, args, True),
        "deep-compression": lambda: run_dc(name, baseline.model, data, budget, folder, args),
        "rl": lambda: run_rl(name, data, budget, folder, args),
    }
    methods = args.methods.split(",") + (["rl"] if args.rl_agent else [])
    base = {"model": name, "ratio": ratio, "budget_bytes": round(budget, 1)}
    base["base_test_acc"] = round(100 * evaluate(baseline.model, data.x_test, data.y_test), 2)
    rows = []
    for method in methods:
        if method not in runners:
            raise SystemExit(f"unknown method {method!r}; choose from {', '.join(runners)}")
        started = time.perf_counter()
        row = runners[method]()
        rows.append(base | row | {"seconds": round(time.perf_counter() - started, 1)})
    return rows


def markdown(rows: list[dict]) -> str:
    """One line per model, budget and method."""
    lines = [
        "| model | budget | method | test acc (base) | Yang bytes (x) | .apz bytes (x) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | 1/{r['ratio']:g} | {r['method']} | {r['error']} | | |")
            continue
        lines.append(
            f"| {r['model']} | 1/{r['ratio']:g} ({r['budget_bytes']:.0f} B) | {r['method']} "
            f"| {r['test_acc']} ({r['base_test_acc']}) | {r['yang_bytes']:.0f} ({r['yang_x']}x) "
            f"| {r['apz_bytes']} ({r['apz_x']}x) |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet300,lenet5")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--ratios", default="40,100,200")
    parser.add_argument("--methods", default="admm,admm-storage,deep-compression")
    parser.add_argument("--admm-epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--dc-prune-epochs", type=int, default=8)
    parser.add_argument("--dc-quant-epochs", type=int, default=2)
    parser.add_argument("--dc-allocation", choices=("scan", "paper"), default="scan")
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--rl-agent", default=None)
    parser.add_argument("--rl-episodes", type=int, default=40)
    parser.add_argument("--baseline-epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results/size_budget.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    rows = []
    for name in args.models.split(","):
        baseline = load_trained(name, data, Path(args.runs_dir), args.baseline_epochs)
        for ratio in (float(r) for r in args.ratios.split(",")):
            for row in run_budget(name, baseline, data, ratio, args):
                print(json.dumps(row), flush=True)
                rows.append(row)
    table = markdown(rows)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "size_budget",
        "dataset": args.dataset,
        "args": vars(args),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "rows": rows,
        "markdown": table,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
