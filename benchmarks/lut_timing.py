"""Time to fit the measured latency model and build its table, and to predict one policy.

Usage:
    python benchmarks/lut_timing.py --models vgg_small,resnet20,mobilenetv2_small [--samples 50]

A fresh temporary cache is used. "fit" is the one-time work per model and machine (export,
epilogues, calibration: 8 whole-model versions in two 10 s windows and their layers); "table"
measures every new layer of the random policies, one policy at a time as a search meets
them; "predict" is then pure lookup, per policy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from autoprune.compress import ChannelPlan, pruned_specs
from autoprune.core.specs import discover_layers
from autoprune.cost import load_profile
from autoprune.latency import build_cost_model, fit_latency_model, random_prune_policies
from autoprune.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg_small,resnet20,mobilenetv2_small")
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    example = torch.zeros(1, 1, 28, 28)
    print("| model | fit s | table s (entries) | predict ms per policy |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        model = build_model(name).eval()
        specs = discover_layers(model, (1, 28, 28))
        plan = ChannelPlan.build(model, example)
        policies = random_prune_policies(specs, plan, args.samples, seed=1)
        shaped = [(pruned_specs(specs, plan, p.keep_ratios()), p) for p in policies]
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            cost = build_cost_model(load_profile("cpu"), lut_cache_dir=Path(tmp))
            cost = fit_latency_model(cost, model, example, specs)
            fit = time.perf_counter() - started
            started = time.perf_counter()
            for layer_specs, policy in shaped:
                cost.estimate(layer_specs, policy.layers)
            build = time.perf_counter() - started
            entries = len(cost.table)  # type: ignore[attr-defined]
            started = time.perf_counter()
            for layer_specs, policy in shaped:
                cost.estimate(layer_specs, policy.layers)
            predict = (time.perf_counter() - started) / len(shaped) * 1e3
        print(f"| {name} | {fit:.1f} | {build:.1f} ({entries}) | {predict:.3f} |")


if __name__ == "__main__":
    main()
