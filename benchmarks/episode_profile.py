"""Where the time of one search evaluation goes (the product's inner loop).

Scores ``--policies`` random keep-ratio policies (fixed seed, every prunable layer kept at
0.55-0.85) with the search's evaluator (``--val-samples`` validation images, least-squares
reconstruction on) and prints the median wall time of an uncached evaluation, then a
cProfile of ``--profiled`` more evaluations grouped into phases. It uses only the
evaluator's public interface, so the same script times older versions of autoprune::

    python benchmarks/episode_profile.py --model vgg_small
    PYTHONPATH=/path/to/old/checkout python benchmarks/episode_profile.py --model vgg_small
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time

import torch

from autoprune.compress import CompressionOptions
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator
from autoprune.workflow.session import prepare_search

PHASES = {
    "conv / linear / pool / activations (forward passes)": (
        "conv2d",
        "linear",
        "max_pool2d",
        "relu",
        "relu_",
        "adaptive_avg_pool2d",
        "add",
        "batch_norm",
        "hardtanh",
    ),
    "least squares (patches, products, solves)": (
        "im2col",
        "linalg_lstsq",
        "linalg_solve",
        "_refit",
        "_relative_error",
        "_design",
        "_rows",
        "_ridge_solve",
        "_normal_equations",
        "_solve",
    ),
    "BatchNorm statistics": ("var_mean", "_set_statistics"),
    "model copy and channel removal": ("deepcopy", "prune", "index_select", "build_dependency"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg_small")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--val-samples", type=int, default=5000)
    parser.add_argument("--policies", type=int, default=10)
    parser.add_argument("--profiled", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runs-dir", default="runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Time and profile evaluations."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    session = prepare_search(
        SearchConfig(model=args.model, dataset=args.dataset, runs_dir=args.runs_dir)
    )
    settings = EvaluatorConfig(
        val_samples=args.val_samples, compression=CompressionOptions(reconstruct=True)
    )
    started = time.perf_counter()
    evaluator = PolicyEvaluator(
        session.model,
        session.data,
        session.evaluator.specs,
        session.evaluator.cost_model,
        settings,
    )
    setup = time.perf_counter() - started
    rng = random.Random(0)
    prunable = evaluator.plan.prunable

    def policy() -> Policy:
        layers = {n: LayerPolicy(keep_ratio=rng.uniform(0.55, 0.85)) for n in prunable}
        return Policy.for_specs(evaluator.specs, layers)

    evaluator.evaluate(policy())  # warm-up: first-call allocations
    times = []
    for _ in range(args.policies):
        candidate = policy()
        began = time.perf_counter()
        evaluator.evaluate(candidate)
        times.append(time.perf_counter() - began)
    print(
        f"{args.model}, {len(evaluator.y_val)} validation images, {torch.get_num_threads()} "
        f"threads: evaluator set-up {setup:.2f} s; one evaluation median "
        f"{statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f}, "
        f"{args.policies} policies)"
    )
    profiler = cProfile.Profile()
    candidates = [policy() for _ in range(args.profiled)]
    profiler.enable()
    for candidate in candidates:
        evaluator.evaluate(candidate)
    profiler.disable()
    report(pstats.Stats(profiler), args.profiled)
    return 0


def bare_name(label: str) -> str:
    """``conv2d`` from ``<built-in method torch.conv2d>``; Python names unchanged."""
    return label.strip("<>").split()[-1].split(".")[-1]


def report(stats: pstats.Stats, count: int) -> None:
    """Own time per phase, per evaluation (functions matched by name)."""
    totals = dict.fromkeys(PHASES, 0.0)
    overall = 0.0
    for (_, _, label), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        overall += own
        name = bare_name(label)
        for phase, names in PHASES.items():
            if name in names:
                totals[phase] += own
                break
    print(f"profile (own time per evaluation, {count} evaluations):")
    for phase, seconds in totals.items():
        print(f"  {phase:<55} {seconds / count:.3f} s")
    rest = overall - sum(totals.values())
    print(f"  {'everything else':<55} {rest / count:.3f} s")
    print(f"  {'total':<55} {overall / count:.3f} s")


if __name__ == "__main__":
    raise SystemExit(main())
