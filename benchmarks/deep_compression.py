"""Deep Compression table: LeNet-300-100 and LeNet-5 pruned, k-means-shared, Huffman-coded.

Reproduces Table 1 of Han, Mao, Dally (ICLR 2016) on Fashion-MNIST: test accuracy before and
after, and the compression of real ``.apz`` files after pruning (float values + relative
indices), after quantization (codes + relative indices) and after Huffman coding, against the
dense float32 model (biases included, like the paper's 1070 KB / 1720 KB).

Usage:
    python benchmarks/deep_compression.py [--models lenet300,lenet5] [--dataset fashion-mnist]
        [--targets paper|scan] [--tolerance 0.02] [--prune-epochs 12] [--quant-epochs 3]
        [--layout relative|auto] [--baseline-epochs N] [--runs-dir runs]
        [--out benchmarks/results/deep_compression.json]

Baselines are the cached checkpoints of ``autoprune train`` / ``benchmarks/train_zoo.py``
under ``<runs-dir>/checkpoints`` (trained now when missing). ``--targets paper`` uses the
per-layer sparsities of the paper (Han et al. 2016, Table 2); ``scan`` chooses them by the
sensitivity scan on the validation split with ``--tolerance``. ``--layout auto`` lets each
layer take the smallest of relative indices, a bitmap or dense storage (the paper used
relative indices only). Smoke run (about a minute):
``--models lenet300 --prune-epochs 1 --quant-epochs 1``.

A row whose baseline is at chance level (``autoprune.core.training.chance_accuracy``) is
flagged (``"chance_level": true``, and "CHANCE-LEVEL BASELINE" in the table): its ratios
compress a model that learnt nothing, and its "loss" compares two random guessers.
Training refuses such baselines now; the flag catches an old cached checkpoint passed in.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from autoprune.core.training import DEFAULT_TRAIN, TrainConfig, chance_accuracy
from autoprune.data import DataSplits, load_dataset
from autoprune.deep_compression import DeepCompressionConfig, PruneSchedule, deep_compress
from autoprune.workflow.baseline import Baseline, BaselineRequest, train_baseline

PAPER_TARGETS = {
    "lenet300": {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74},
    "lenet5": {"conv1": 0.34, "conv2": 0.88, "fc1": 0.92, "fc2": 0.81},
}
"""Per-layer sparsity of Deep Compression's Table 2 (weights kept: 8/9/26%, 66/12/8/19%)."""
PAPER_ROWS = {
    "lenet300": {"error": "1.64% -> 1.58%", "prune": 12, "quant": 32, "huffman": 40},
    "lenet5": {"error": "0.80% -> 0.74%", "prune": 12, "quant": 33, "huffman": 39},
}
"""Deep Compression's MNIST results (Han et al. 2016, Table 1), for reference."""


def load_trained(name: str, data: DataSplits, runs_dir: Path, epochs: int | None) -> Baseline:
    """The cached baseline of ``name`` (the zoo's default training unless ``epochs``)."""
    config = DEFAULT_TRAIN.get(name, TrainConfig())
    if epochs is not None:
        config = replace(config, epochs=epochs)
    return train_baseline(BaselineRequest(name, data.name, config), data, runs_dir / "checkpoints")


def run_model(name: str, data: DataSplits, args: argparse.Namespace) -> dict:
    """Compress one model; its table row and full stage report."""
    baseline = load_trained(name, data, Path(args.runs_dir), args.baseline_epochs)
    config = DeepCompressionConfig(
        targets=PAPER_TARGETS.get(name) if args.targets == "paper" else None,
        tolerance=args.tolerance,
        prune_epochs=args.prune_epochs,
        schedule=PruneSchedule(steps=args.prune_steps),
        quant_epochs=args.quant_epochs,
        layout=args.layout,
        seed=args.seed,
    )
    started = time.perf_counter()
    folder = Path(args.runs_dir) / "benchmarks" / "deep_compression" / name
    result = deep_compress(baseline.model, data, config, out_dir=folder)
    stages = result.stages
    before, after = stages["original"].test_accuracy, stages["huffman"].test_accuracy
    chance = chance_accuracy(data)
    row = {
        "model": name,
        "chance_level": min(baseline.meta.get("val_accuracy", 0.0), before) <= chance,
        "targets": args.targets,
        "test_acc_before": round(100 * before, 2),
        "test_acc_after": round(100 * after, 2),
        "loss_pt": round(100 * (before - after), 2),
        "prune_x": round(stages["pruned"].ratio, 1),
        "quant_x": round(stages["quantized"].ratio, 1),
        "huffman_x": round(stages["huffman"].ratio, 1),
        "kb_before": round(stages["original"].file_bytes / 1000, 1),
        "kb_after": round(stages["huffman"].file_bytes / 1000, 1),
        "yang_x": round(stages["original"].yang_bytes / stages["huffman"].yang_bytes, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return {"row": row, "result": result.to_dict()}


def markdown(rows: list[dict]) -> str:
    """The Deep Compression table, with the paper's MNIST rows for reference."""
    lines = [
        "| model | targets | test acc before → after (Δ pt) | prune | +quant | +Huffman "
        "| size | Yang count |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        model = r["model"]
        if r.get("chance_level"):
            model += " (CHANCE-LEVEL BASELINE: ratios meaningless)"
        lines.append(
            f"| {model} | {r['targets']} | {r['test_acc_before']} → {r['test_acc_after']} "
            f"({-r['loss_pt']:+.2f}) | {r['prune_x']}x | {r['quant_x']}x | {r['huffman_x']}x "
            f"| {r['kb_before']} KB → {r['kb_after']} KB | {r['yang_x']}x |"
        )
    for name, p in PAPER_ROWS.items():
        lines.append(
            f"| {name} (paper, MNIST) | paper | error {p['error']} | {p['prune']}x "
            f"| {p['quant']}x | {p['huffman']}x | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet300,lenet5")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--targets", choices=("paper", "scan"), default="paper")
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--prune-epochs", type=int, default=12)
    parser.add_argument("--prune-steps", type=int, default=8)
    parser.add_argument("--quant-epochs", type=int, default=3)
    parser.add_argument("--layout", choices=("relative", "auto"), default="relative")
    parser.add_argument("--baseline-epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results/deep_compression.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    runs = [run_model(name, data, args) for name in args.models.split(",")]
    for run in runs:
        print(json.dumps(run["row"]))
    table = markdown([run["row"] for run in runs])
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "deep_compression",
        "dataset": args.dataset,
        "args": vars(args),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "rows": [run["row"] for run in runs],
        "runs": [run["result"] for run in runs],
        "markdown": table,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
