"""How much accuracy BN recalibration and least-squares reconstruction recover after pruning.

Usage:
    python benchmarks/recovery.py --models vgg_small,resnet20 [--flops 0.5] [--val-samples 5000]

Each model (its cached baseline from ``autoprune train``) is pruned uniformly (L1) to about
``--flops`` of its MACs, then scored on the validation split four ways: stale BatchNorm
statistics, BN recalibrated on training batches, AMC's least-squares reconstruction of the
layers whose inputs were pruned, and both. No fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from autoprune.compress import CompressionOptions, compress_model
from autoprune.core.policy import Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import DEFAULT_TRAIN, TrainConfig, top1_accuracy
from autoprune.cost import load_profile
from autoprune.data import load_dataset
from autoprune.latency import build_cost_model
from autoprune.workflow.baseline import BaselineRequest, load_baseline
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator

VARIANTS = {
    "stale BN": CompressionOptions(reconstruct=False, bn_recalibration=False),
    "BN recalibrated": CompressionOptions(reconstruct=False),
    "LS reconstruction": CompressionOptions(bn_recalibration=False),
    "LS + BN": CompressionOptions(),
}


def uniform_for_flops(evaluator: PolicyEvaluator, target: float) -> Policy:
    """The uniform keep ratio whose MACs are closest to ``target`` of the original."""
    low, high = 0.05, 1.0
    for _ in range(30):
        mid = (low + high) / 2
        macs = evaluator.costs(Policy.uniform(evaluator.specs, keep_ratio=mid))["macs"]
        if macs > target * evaluator.baseline_metrics["macs"]:
            high = mid
        else:
            low = mid
    return Policy.uniform(evaluator.specs, keep_ratio=low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg_small,resnet20")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--flops", type=float, default=0.5)
    parser.add_argument("--val-samples", type=int, default=5000)
    parser.add_argument("--calib-batches", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the cached baseline")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results/recovery.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_dataset(args.dataset)
    rows = []
    for name in args.models.split(","):
        config = DEFAULT_TRAIN.get(name, TrainConfig())
        if args.epochs is not None:
            config = replace(config, epochs=args.epochs)
        baseline = load_baseline(
            BaselineRequest(name, data.name, config), data, Path(args.runs_dir) / "checkpoints"
        )
        if baseline is None:
            print(f"{name}: no cached baseline; run autoprune train --model {name} first")
            continue
        model = baseline.model.eval()
        specs = discover_layers(model, data.input_shape)
        cost = build_cost_model(load_profile("bitfusion"))
        settings = EvaluatorConfig(val_samples=args.val_samples, calib_batches=args.calib_batches)
        evaluator = PolicyEvaluator(model, data, specs, cost, settings)
        policy = uniform_for_flops(evaluator, args.flops)
        ratio = evaluator.costs(policy)["macs"] / evaluator.baseline_metrics["macs"]
        row = {
            "model": name,
            "keep_ratio": round(policy.layers[specs[0].name].keep_ratio, 3),
            "macs_ratio": round(ratio, 3),
            "original": round(evaluator.baseline_metrics["accuracy"], 4),
        }
        for label, options in VARIANTS.items():
            started = time.perf_counter()
            pruned = compress_model(
                model, policy, evaluator.example_input, evaluator.calib, options
            )
            row[label] = round(top1_accuracy(pruned, evaluator.x_val, evaluator.y_val), 4)
            row[f"{label} s"] = round(time.perf_counter() - started, 2)
        rows.append(row)
        print(json.dumps(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
