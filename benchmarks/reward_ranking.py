"""Does the search's reward rank policies the way a fine-tune would?

For ``--policies`` distinct budget-feasible policies (random episodes of the environment,
as a search's exploration produces them), this script measures

* the *fine-tuned* accuracy: the policy compressed by the default evaluation path, then
  fine-tuned for ``--finetune-epochs`` with distillation from the original (what ``apply``
  does), on the test split;
* the *search-time* accuracy (no training) under every evaluator setting of the grid:
  validation images x calibration batches x reconstruction on/off;

and prints the Spearman rank correlation of each setting with the fine-tuned accuracy, and
the seconds per evaluation. Results are cached per policy in ``--out`` (a JSON file), so an
interrupted run continues where it stopped. Example (vgg_small, about an hour on 2 cores)::

    python benchmarks/reward_ranking.py --model vgg_small --policies 30
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from autoprune.compress import CompressionOptions
from autoprune.core.policy import Policy
from autoprune.core.training import finetune, top1_accuracy
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import PolicyEvaluator
from autoprune.workflow.session import evaluator_config, prepare_search
from envs import CompressionEnv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg_small")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--budget", default="flops=0.5")
    parser.add_argument("--policies", type=int, default=30)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--val-samples", default="1000,2000,5000,all")
    parser.add_argument("--calib-batches", default="2,4,8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default=None, help="JSON results (default: benchmarks/results)")
    return parser.parse_args(argv)


def random_policies(env: CompressionEnv, count: int, seed: int) -> list[Policy]:
    """``count`` distinct feasible policies from episodes of uniform random actions."""
    rng = np.random.default_rng(seed)
    policies: dict[str, Policy] = {}
    for _ in range(100 * count):
        if len(policies) == count:
            break
        env.reset()
        done, info = False, {}
        while not done:
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            _, _, done, _, info = env.step(action)
        policies.setdefault(env.evaluator.key(info["policy"]), info["policy"])
    return list(policies.values())


def prefix_means(
    evaluator: PolicyEvaluator, policy: Policy, sizes: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Accuracy and mean log-probability of the label on the first n validation images."""
    model = evaluator.compress(policy)
    with torch.inference_mode():
        logits = torch.cat([model(x) for x in evaluator.x_val.split(512)])
    correct = (logits.argmax(1) == evaluator.y_val).double()
    log_p = torch.log_softmax(logits, 1).gather(1, evaluator.y_val[:, None])[:, 0].double()
    accuracy, likelihood = {}, {}
    for size in sizes:
        n = len(correct) if size == "all" else int(size)
        accuracy[size] = round(float(correct[:n].mean()), 5)
        likelihood[size] = round(float(log_p[:n].mean()), 5)
    return accuracy, likelihood


def main(argv: list[str] | None = None) -> int:
    """Run the study (resumable) and print the table."""
    args = parse_args(argv)
    config = SearchConfig(
        model=args.model,
        dataset=args.dataset,
        targets=(args.budget,),
        val_samples=None,
        seed=args.seed,
        runs_dir=args.runs_dir,
    )
    session = prepare_search(config)
    out = Path(args.out or f"benchmarks/results/reward_ranking_{args.model}.json")
    state = json.loads(out.read_text()) if out.is_file() else {"policies": []}
    env = CompressionEnv(session.evaluator, session.budget)
    policies = random_policies(env, args.policies, args.seed)
    default = evaluator_config(SearchConfig())
    rows = state["policies"]
    for index, policy in enumerate(policies):
        if index < len(rows):
            continue
        started = time.perf_counter()
        model = session.evaluator.compress(policy)
        finetune(model, session.data, args.finetune_epochs, args.finetune_lr, teacher=session.model)
        tuned = top1_accuracy(model.eval(), session.data.x_test, session.data.y_test)
        rows.append({"policy": policy.to_dict(), "tuned_test_accuracy": tuned, "accuracy": {}})
        print(
            f"policy {index}: fine-tuned test {tuned:.4f} ({time.perf_counter() - started:.0f} s)"
        )
        out.write_text(json.dumps(state, indent=1))
    grid = [
        (calib, reconstruct)
        for calib in (int(c) for c in args.calib_batches.split(","))
        for reconstruct in (True, False)
    ]
    seconds: dict[str, float] = {}
    for calib, reconstruct in grid:
        name = f"calib{calib}_{'ls' if reconstruct else 'bn'}"
        settings = replace(
            default,
            val_samples=None,
            calib_batches=calib,
            compression=CompressionOptions(reconstruct=reconstruct),
        )
        evaluator = session.evaluator.with_config(settings)
        sizes = args.val_samples.split(",")
        for row in rows:
            scores = row.setdefault("accuracy", {}), row.setdefault("log_p", {})
            if any(name not in score for score in scores):
                policy = Policy.from_dict(row["policy"])
                scores[0][name], scores[1][name] = prefix_means(evaluator, policy, sizes)
        started = time.perf_counter()
        for row in rows[:3]:
            evaluator.cache.clear()
            evaluator.evaluate(Policy.from_dict(row["policy"]))
        seconds[name] = (time.perf_counter() - started) / 3
        out.write_text(json.dumps(state, indent=1))
    report(rows, args, seconds)
    return 0


def report(rows: list[dict], args: argparse.Namespace, seconds: dict[str, float]) -> None:
    """Spearman rho of every (setting, validation images) with the fine-tuned accuracy."""
    tuned = [r["tuned_test_accuracy"] for r in rows]
    sizes = args.val_samples.split(",")
    print(f"\n{len(rows)} policies, {args.budget}, fine-tuned {args.finetune_epochs} epoch(s)")
    print(f"{'setting':<20}" + "".join(f"{'val ' + s:>12}" for s in sizes) + f"{'s/eval':>9}")
    for name in rows[0]["accuracy"]:
        for kind in ("accuracy", "log_p"):
            cells = [
                f"{spearmanr([r[kind][name][size] for r in rows], tuned)[0]:>12.3f}"
                for size in sizes
            ]
            label = f"{name} {'acc' if kind == 'accuracy' else 'log p'}"
            print(f"{label:<20}" + "".join(cells) + f"{seconds.get(name, float('nan')):>9.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
