"""Train every zoo model on a dataset and record accuracy and wall time.

Usage:
    python benchmarks/train_zoo.py --dataset fashion-mnist [--models vgg_small,lenet5]
        [--epochs N] [--out benchmarks/results/train_zoo.json]

Checkpoints are cached under runs/checkpoints exactly like ``autoprune train``; pass
``--force`` to retrain and time again.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from autoprune.core.training import DEFAULT_TRAIN, TrainConfig
from autoprune.data import load_dataset
from autoprune.models import model_names
from autoprune.workflow.baseline import BaselineRequest, train_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--models", default=",".join(m for m in model_names() if m != "demo"))
    parser.add_argument("--epochs", type=int, default=None, help="override every model's epochs")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/train_zoo.json")
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    rows = []
    for name in args.models.split(","):
        config = DEFAULT_TRAIN.get(name, TrainConfig())
        if args.epochs is not None:
            config = replace(config, epochs=args.epochs)
        started = time.perf_counter()
        baseline = train_baseline(
            BaselineRequest(name, data.name, config),
            data,
            Path(args.runs_dir) / "checkpoints",
            force=args.force,
        )
        row = {
            "model": name,
            "epochs": config.epochs,
            "val_accuracy": round(baseline.meta["val_accuracy"], 4),
            "test_accuracy": round(baseline.meta["test_accuracy"], 4),
            "train_seconds": baseline.meta["train_seconds"],
            "cached": baseline.cached,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        rows.append(row)
        print(json.dumps(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    out.write_text(json.dumps({"dataset": data.name, "machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
