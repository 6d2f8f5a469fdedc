"""Measured latency of an exported original vs compressed model (ONNX Runtime and PyTorch).

Usage (after ``autoprune apply POLICY ... --export DIR``):
    python benchmarks/deploy_latency.py --model vgg_small --dataset fashion-mnist \\
        --weights runs/checkpoints/vgg_small__...pt --export DIR [--batches 1,64]

Rows: ONNX Runtime fp32 original vs fp32 compressed, vs int8 compressed (when DIR holds
``model.int8.onnx``), and PyTorch eager original vs compressed. One intra-op thread,
median of interleaved timed runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from autoprune.compress import prune_channels
from autoprune.core.policy import Policy
from autoprune.data import load_dataset
from autoprune.latency import compare_latency
from autoprune.models import load_weights
from autoprune.workflow.baseline import build_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg_small")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--export", required=True, type=Path)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default="benchmarks/results/deploy_latency.json")
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    original = load_weights(build_for(args.model, data), args.weights).eval()
    policy = Policy.load(args.export / "policy.json")
    keep = policy.keep_ratios()
    compressed = prune_channels(build_for(args.model, data).eval(), data.x_val[:1], keep)
    compressed.load_state_dict(torch.load(args.export / "model.pt", weights_only=True))
    int8 = args.export / "model.int8.onnx"
    rows = compare_latency(
        original,
        compressed.eval(),
        tuple(data.input_shape),
        batch_sizes=tuple(int(b) for b in args.batches.split(",")),
        int8_path=int8 if int8.is_file() else None,
        repeats=args.repeats,
    )
    print("| runtime | batch | original ms | compressed ms | speedup |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['runtime']} | {row['batch']} | {row['original_ms']:.3f} | "
            f"{row['compressed_ms']:.3f} | {row['speedup']:.2f}x |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
