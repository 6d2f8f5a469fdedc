"""Accuracy before fine-tuning of sparse + k-means policies, with and without the refit.

The search scores a policy without training. At Deep Compression's sparsities magnitude
masks alone ruin that score, so the evaluator refits the kept weights of every layer at
least 50% sparse by least squares (``reconstruct``, :mod:`autoprune.compress.refit`). This
benchmark applies one sparsity and bit-width to every layer of a trained model and reports
the validation accuracy (the search's 5,000 images) and the time of one evaluation, with
the refit (the default) and without it (``reconstruct: false``).

Usage:
    python benchmarks/sparse_recovery.py [--model lenet300] [--dataset fashion-mnist]
        [--sparsities 0.5,0.8,0.9,0.95,0.98] [--bits 5] [--repeats 3]
        [--out benchmarks/results/sparse_recovery.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from autoprune.core.policy import LayerPolicy, Policy
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import prepare_search


def measure(config: SearchConfig, sparsities: list[float], bits: int, repeats: int) -> list[dict]:
    """Accuracy and median evaluation seconds of each uniform policy under ``config``."""
    session = prepare_search(config)
    evaluator = session.evaluator
    evaluator.evaluate(Policy.identity(evaluator.specs))  # one-time work (targets, graph)
    rows = []
    for sparsity in sparsities:
        layer = LayerPolicy(w_bits=bits, sparsity=sparsity, quantizer="kmeans")
        policy = Policy.for_specs(evaluator.specs, {s.name: layer for s in evaluator.specs})
        seconds = []
        for _ in range(repeats):
            evaluator.cache.clear()
            started = time.perf_counter()
            evaluation = evaluator.evaluate(policy)
            seconds.append(time.perf_counter() - started)
        rows.append(
            {
                "reconstruct": config.reconstruct,
                "sparsity": sparsity,
                "bits": bits,
                "val_acc": round(100 * evaluation.metrics["accuracy"], 2),
                "seconds": round(statistics.median(seconds), 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet300")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--sparsities", default="0.5,0.8,0.9,0.95,0.98")
    parser.add_argument("--bits", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results/sparse_recovery.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sparsities = [float(s) for s in args.sparsities.split(",")]
    base = SearchConfig(
        model=args.model,
        weights=args.weights,
        dataset=args.dataset,
        mode="sparse",
        targets=("flops=1.0",),  # no limit, and no file-size prediction per evaluation
        runs_dir=args.runs_dir,
    )
    rows = []
    for reconstruct in (True, False):
        config = base.replace(reconstruct=reconstruct)
        rows += measure(config, sparsities, args.bits, args.repeats)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "sparse_recovery",
        "args": vars(args),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "rows": rows,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
