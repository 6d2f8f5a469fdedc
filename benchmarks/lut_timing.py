"""Time to build the measured latency table for random policies, and to predict one policy.

Usage:
    python benchmarks/lut_timing.py --models vgg_small,resnet20,mobilenetv2_small [--samples 50]

A fresh temporary cache is used, so the first pass measures every new layer shape; the
second pass over the same policies is pure lookup (the per-policy prediction time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from autoprune.compress import ChannelPlan, pruned_specs
from autoprune.cost import build_cost_model, load_profile
from autoprune.latency_check import random_prune_policies
from autoprune.models import build_model
from autoprune.specs import discover_layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg_small,resnet20,mobilenetv2_small")
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    example = torch.zeros(1, 1, 28, 28)
    print("| model | build s | predict ms per policy |")
    print("|---|---|---|")
    for name in args.models.split(","):
        model = build_model(name).eval()
        specs = discover_layers(model, (1, 28, 28))
        plan = ChannelPlan.build(model, example)
        policies = random_prune_policies(specs, plan, args.samples)
        shaped = [(pruned_specs(specs, plan, p.keep_ratios()), p) for p in policies]
        with tempfile.TemporaryDirectory() as tmp:
            cost = build_cost_model(load_profile("cpu"), lut_cache_dir=Path(tmp))
            started = time.perf_counter()
            for layer_specs, policy in shaped:
                cost.estimate(layer_specs, policy.layers)
            build = time.perf_counter() - started
            started = time.perf_counter()
            for layer_specs, policy in shaped:
                cost.estimate(layer_specs, policy.layers)
            predict = (time.perf_counter() - started) / len(shaped) * 1e3
        print(f"| {name} | {build:.1f} | {predict:.3f} |")


if __name__ == "__main__":
    main()
