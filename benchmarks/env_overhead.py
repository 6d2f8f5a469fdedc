"""How much of an episode is evaluation, and how well search-time accuracy ranks policies.

1. Runs N episodes of random actions through ``CompressionEnv`` and splits the wall time of
   each into evaluation (``Evaluation.eval_seconds``: compression, BN recalibration, forward
   passes) and everything else (decoding, the budget wall, observations, bookkeeping).
2. With ``--spearman K``: for K random (budget-feasible) policies, compares the search-time
   accuracy (BN-recalibrated, no fine-tune) with the accuracy after a one-epoch fine-tune and
   prints their Spearman rank correlation: how far the cheap proxy can be trusted.

Defaults are the reference workload (vgg_small on Fashion-MNIST, 5,000 validation images).
The baseline is trained once and cached in ``--checkpoints`` (minutes; ``--epochs`` shortens
it). Smoke run on the embedded data set::

    python benchmarks/env_overhead.py --model demo --dataset digits --val-size 0.2 \\
        --epochs 2 --episodes 3 --spearman 3 --calib-batches 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from autoprune.core.policy import Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import DEFAULT_TRAIN, TrainConfig, finetune, top1_accuracy
from autoprune.cost import load_profile
from autoprune.data import DataSplits, load_dataset
from autoprune.latency import build_cost_model
from autoprune.workflow.baseline import BaselineRequest, train_baseline
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator
from envs import CompressionEnv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg_small", help="zoo model")
    parser.add_argument("--dataset", default="fashion-mnist", help="data set name")
    parser.add_argument("--data-dir", default=None, help="folder of the data set files")
    parser.add_argument("--val-size", type=float, default=5000, help="validation count/fraction")
    parser.add_argument("--val-samples", type=int, default=None, help="images used per reward")
    parser.add_argument("--epochs", type=int, default=None, help="baseline training epochs")
    parser.add_argument("--checkpoints", type=Path, default=Path("runs/checkpoints"))
    parser.add_argument("--profile", default="bitfusion", help="hardware profile")
    parser.add_argument("--mode", default="prune", choices=("prune", "quantize", "sparse", "joint"))
    parser.add_argument("--budget", action="append", default=None, help="KEY=VALUE, repeatable")
    parser.add_argument("--episodes", type=int, default=20, help="random episodes to time")
    parser.add_argument("--spearman", type=int, default=0, help="policies to fine-tune (0: skip)")
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--calib-batches", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_evaluator(args: argparse.Namespace) -> tuple[DataSplits, PolicyEvaluator]:
    """Data, cached baseline and evaluator for the options."""
    val_size: int | float = int(args.val_size) if args.val_size > 1 else args.val_size
    data = load_dataset(args.dataset, data_dir=args.data_dir, val_size=val_size, seed=args.seed)
    config = DEFAULT_TRAIN.get(args.model, TrainConfig())
    if args.epochs is not None:
        config = replace(config, epochs=args.epochs)
    started = time.perf_counter()
    baseline = train_baseline(
        BaselineRequest(args.model, data.name, config), data, args.checkpoints
    )
    how = "loaded" if baseline.cached else "trained"
    print(f"baseline {how} in {time.perf_counter() - started:.1f} s: {baseline.weights_path}")
    model = baseline.model.eval()
    specs = discover_layers(model, data.input_shape)
    cost = build_cost_model(load_profile(args.profile))
    evaluator_config = EvaluatorConfig(
        val_samples=args.val_samples, calib_batches=args.calib_batches, seed=args.seed
    )
    evaluator = PolicyEvaluator(model, data, specs, cost, evaluator_config)
    print(
        f"{args.model} on {data.name}: {len(specs)} layers, {len(evaluator.y_val)} validation "
        f"images, baseline accuracy {evaluator.baseline_metrics['accuracy']:.4f}"
    )
    return data, evaluator


def random_episode(env: CompressionEnv, rng: np.random.Generator) -> tuple[float, dict]:
    """One episode of uniform random actions: its wall time and terminal info."""
    started = time.perf_counter()
    env.reset(seed=int(rng.integers(2**31)))
    terminated = False
    info: dict = {}
    while not terminated:
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        _, _, terminated, _, info = env.step(action)
    return time.perf_counter() - started, info


def time_episodes(env: CompressionEnv, episodes: int, seed: int) -> None:
    """Print the wall time per episode split into evaluation and everything else."""
    rng = np.random.default_rng(seed)
    steps = len(env.layer_names)
    print(f"\n{episodes} random episodes, mode {env.mode}, budget {env.budget}, {steps} steps")
    print(f"{'episode':>7} {'wall_s':>9} {'eval_s':>9} {'other_s':>9} {'cached':>6} {'acc':>7}")
    walls, evals = [], []
    for episode in range(episodes):
        wall, info = random_episode(env, rng)
        walls.append(wall)
        evals.append(info["eval_seconds"])
        print(
            f"{episode:>7} {wall:>9.3f} {info['eval_seconds']:>9.3f} "
            f"{wall - info['eval_seconds']:>9.4f} {info['cached']!s:>6} "
            f"{info['metrics']['accuracy']:>7.4f}"
        )
    wall, evaluation = float(np.mean(walls)), float(np.mean(evals))
    other = wall - evaluation
    share = other / wall if wall > 0 else 0.0
    print(
        f"mean per episode: wall {wall:.3f} s = evaluation {evaluation:.3f} s + everything "
        f"else {other:.4f} s ({share:.1%} of the episode; {1e3 * other / steps:.2f} ms per step)"
    )


def random_policies(
    env: CompressionEnv, evaluator: PolicyEvaluator, count: int, seed: int
) -> list[Policy]:
    """``count`` distinct budget-feasible policies from random episodes (evaluated once)."""
    rng = np.random.default_rng(seed + 1)
    policies: dict[str, Policy] = {}
    for _ in range(50 * count):
        if len(policies) == count:
            break
        _, info = random_episode(env, rng)
        policy = info["policy"]
        policies.setdefault(evaluator.key(policy), policy)
    return list(policies.values())


def rank_correlation(
    env: CompressionEnv,
    evaluator: PolicyEvaluator,
    data: DataSplits,
    args: argparse.Namespace,
) -> None:
    """Print search-time vs fine-tuned accuracy of random policies and their Spearman rho."""
    policies = random_policies(env, evaluator, args.spearman, args.seed)
    lr = args.finetune_lr
    print(f"\nSpearman: {len(policies)} random policies, 1 fine-tune epoch each (lr {lr})")
    print(f"{'policy':>6} {'search_acc':>10} {'tuned_acc':>10} {'tune_s':>8}")
    search, tuned = [], []
    for index, policy in enumerate(policies):
        search.append(evaluator.evaluate(policy).metrics["accuracy"])
        started = time.perf_counter()
        model = evaluator.compress(policy)
        finetune(model, data, 1, args.finetune_lr, seed=args.seed)
        tuned.append(top1_accuracy(model, evaluator.x_val, evaluator.y_val))
        seconds = time.perf_counter() - started
        print(f"{index:>6} {search[-1]:>10.4f} {tuned[-1]:>10.4f} {seconds:>8.1f}")
    if len(policies) < 3:
        print("need at least 3 distinct policies for a rank correlation")
        return
    rho, p_value = spearmanr(search, tuned)
    print(f"Spearman rho = {rho:.3f} (p = {p_value:.3g}) over {len(policies)} policies")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data, evaluator = build_evaluator(args)
    env = CompressionEnv(evaluator, args.budget or ["flops=0.5"], mode=args.mode)
    time_episodes(env, args.episodes, args.seed)
    if args.spearman:
        rank_correlation(env, evaluator, data, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
