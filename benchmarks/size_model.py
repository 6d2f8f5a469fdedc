"""Predicted ``.apz`` size against the file ``apply`` really writes, for random policies.

For each model, draws random sparse + quantized policies (per layer: keep ratio 0.5-1 for
prunable layers, sparsity 0-0.95, weight bits 2-8, linear or k-means), prices each with the
search's evaluator (``evaluator.costs(policy)["size"]``: the predicted file, no file
written), then compresses the model by the search's path (prune, reconstruct, recalibrate,
sparsify, quantize), codes it exactly as ``autoprune apply`` does (``finalize_and_code``,
the policy with its evaluation record and metrics as metadata) into a temporary folder and
compares. No fine-tuning: ``apply --finetune-epochs N`` would move linear codes a little
further (masks and k-means assignments stay fixed).

Also checks that the ``bits`` metric (Yang et al.'s Σ bits x nonzeros) equals the written
file's count, and times the prediction (first call of a policy, and a repeated call).

Usage:
    python benchmarks/size_model.py [--models lenet300,lenet5,vgg_small] [--policies 50]
        [--epochs lenet300=2,lenet5=2] [--runs-dir runs] [--out benchmarks/results/size_model.json]

The models' trained baselines come from ``runs/checkpoints`` (trained when missing, with the
zoo's epochs unless ``--epochs`` names a shorter training).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import LayerSpec, discover_layers
from autoprune.core.training import DEFAULT_TRAIN, TrainConfig
from autoprune.cost import load_profile
from autoprune.data import DataSplits, load_dataset
from autoprune.latency import build_cost_model
from autoprune.workflow.baseline import BaselineRequest, train_baseline
from autoprune.workflow.coded_file import finalize_and_code
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import PolicyEvaluator
from autoprune.workflow.session import evaluator_config


def random_policy(specs: list[LayerSpec], rng: np.random.Generator) -> Policy:
    """A random sparse + quantized policy (a_bits stay float: they do not reach the file)."""
    layers = {
        spec.name: LayerPolicy(
            keep_ratio=float(rng.uniform(0.5, 1.0)) if spec.prunable else 1.0,
            w_bits=int(rng.integers(2, 9)),
            sparsity=float(rng.uniform(0.0, 0.95)),
            quantizer=str(rng.choice(["linear", "kmeans"])),
        )
        for spec in specs
    }
    return Policy.for_specs(specs, layers)


def build_evaluator(name: str, data: DataSplits, args: argparse.Namespace) -> PolicyEvaluator:
    """The search's evaluator of the cached baseline of ``name``."""
    config = DEFAULT_TRAIN.get(name, TrainConfig())
    if name in args.epochs:
        config = replace(config, epochs=args.epochs[name])
    request = BaselineRequest(name, data.name, replace(config, seed=0))
    baseline = train_baseline(request, data, Path(args.runs_dir) / "checkpoints")
    model = baseline.model.eval()
    specs = discover_layers(model, data.input_shape)
    search = SearchConfig(model=name, val_samples=args.val_samples)
    cost = build_cost_model(load_profile("bitfusion"))
    evaluator = PolicyEvaluator(model, data, specs, cost, evaluator_config(search))
    print(f"{name}: {baseline.weights_path}", flush=True)
    return evaluator


def measure(evaluator: PolicyEvaluator, policy: Policy, folder: Path) -> dict:
    """Predicted and real bytes of one policy."""
    started = time.perf_counter()
    costs = evaluator.costs(policy)
    cold_ms = 1e3 * (time.perf_counter() - started)
    started = time.perf_counter()
    evaluator.costs(policy)
    memo_ms = 1e3 * (time.perf_counter() - started)
    predicted = evaluator.size_model.predict(policy.layers)
    compressed = evaluator.compress(policy)
    policy.meta = {"evaluation": evaluator.record()}
    policy.metrics = {"accuracy": evaluator.accuracy(compressed, copy_model=True), **costs}
    names = [spec.name for spec in evaluator.specs]
    report = finalize_and_code(
        compressed, names, folder / "model.apz", {"policy": policy.to_dict()}
    )
    return {
        "predicted": int(costs["size"]),
        "real": report.file_bytes,
        "error_pct": 100.0 * (costs["size"] / report.file_bytes - 1.0),
        "layers": [predicted.layer_bytes, sum(layer.total_bytes for layer in report.layers)],
        "extra": [predicted.extra_bytes, report.extra_bytes],
        "header": [predicted.header_bytes, report.overhead_bytes],
        "bits": [costs["bits"], 8 * report.yang_bytes],
        "predict_ms": [round(cold_ms, 3), round(memo_ms, 3)],
        "policy": {
            n: [lp.keep_ratio, lp.w_bits, lp.sparsity, lp.quantizer]
            for n, lp in policy.layers.items()
        },
    }


def run_model(name: str, data: DataSplits, args: argparse.Namespace) -> dict:
    """All policies of one model and their summary."""
    evaluator = build_evaluator(name, data, args)
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.policies):
            row = measure(evaluator, random_policy(evaluator.specs, rng), Path(folder))
            rows.append(row)
            print(
                f"  {name} #{index}: predicted {row['predicted']:,} real {row['real']:,} "
                f"({row['error_pct']:+.2f}%)",
                flush=True,
            )
    errors = [abs(row["error_pct"]) for row in rows]
    summary = {
        "policies": len(rows),
        "median_error_pct": round(statistics.median(errors), 3),
        "worst_error_pct": round(max(errors), 3),
        "mean_signed_error_pct": round(statistics.fmean(r["error_pct"] for r in rows), 3),
        "bits_exact": all(r["bits"][0] == r["bits"][1] for r in rows),
        "predict_ms_first_call_median": round(
            statistics.median(r["predict_ms"][0] for r in rows), 3
        ),
        "predict_ms_repeat_median": round(statistics.median(r["predict_ms"][1] for r in rows), 3),
        "baseline_size_bytes": evaluator.baseline_metrics["size"],
    }
    print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in summary.items()), flush=True)
    settings = {"seed": args.seed, "val_samples": args.val_samples, "epochs": args.epochs}
    return {"summary": summary, "settings": settings, "rows": rows}


def parse_epochs(text: str) -> dict[str, int]:
    """``lenet300=2,lenet5=2`` as a dict."""
    pairs = [item.split("=") for item in text.split(",") if item]
    return {name: int(value) for name, value in pairs}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet300,lenet5,vgg_small")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--policies", type=int, default=50)
    parser.add_argument("--epochs", type=parse_epochs, default={}, help="e.g. lenet300=2")
    parser.add_argument("--val-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results/size_model.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    out = Path(args.out)
    results = json.loads(out.read_text())["models"] if out.exists() else {}
    for name in args.models.split(","):
        results[name] = run_model(name, data, args)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "benchmark": "size_model",
            "dataset": args.dataset,
            "platform": platform.platform(),
            "torch": torch.__version__,
            "models": results,
        }
        out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
