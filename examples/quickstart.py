"""autoprune from Python, top to bottom: search, inspect, apply, reload, run with ONNX Runtime.

Run from the repository root (everything is written under ``runs/`` and ``quickstart_out/``):

    .venv/bin/python examples/quickstart.py                 # trains the demo baseline first
    .venv/bin/python examples/quickstart.py --weights W.pt  # a trained state dict of 'demo'

The first run trains the ``demo`` CNN on scikit-learn's digits (about two minutes on two
cores; cached under ``runs/checkpoints/``), then every step takes seconds.

The numbers it prints vary with the machine and torch's thread count: float sums differ in
their last bits, the baseline and the scores with them, and the sampler follows the scores.
The same machine, threads and seed repeat them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import autoprune
from autoprune.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="trained state dict of 'demo' (default: baseline)")
    parser.add_argument("--episodes", type=int, default=12, help="evaluations to search")
    parser.add_argument("--runs-dir", default="runs", help="root of runs")
    parser.add_argument("--out", default="quickstart_out", help="export folder")
    args = parser.parse_args()

    # 1. search: half the FLOPs of the demo CNN, with Optuna's TPE sampler; it models the
    #    scores after 4 random trials (its default, 10, would leave a short search all random)
    run = autoprune.search(
        "demo",
        "digits",
        target="flops=0.5",
        agent="tpe",
        agent_options={"sampler_kwargs": {"n_startup_trials": 4}},
        episodes=args.episodes,
        runs_dir=args.runs_dir,
        weights=args.weights,
    )
    print(f"MLflow run {run.run_id}, results in {run.run_dir}")

    # 2. inspect the best policy: a keep ratio (and bits, sparsity) per layer
    if run.best is None:
        raise SystemExit("no policy met the budget; search with more --episodes")
    policy = run.best.policy
    for name, layer in policy.layers.items():
        print(f"  {name:6} keep {layer.keep_ratio:.2f}  w_bits {layer.w_bits}")
    base, best = run.baseline_metrics, run.best.metrics
    print(f"accuracy {base['accuracy']:.4f} -> {best['accuracy']:.4f}, ", end="")
    print(f"MACs {base['macs']:,.0f} -> {best['macs']:,.0f}")

    # 3. apply: compress the trained model, fine-tune one epoch, export .pt/.onnx/.apz
    applied = autoprune.apply(run, finetune_epochs=1, export_dir=args.out)
    print(f"test accuracy after fine-tuning: {applied.compressed['test_accuracy']:.4f}")

    # 4. reload the coded .apz file as a PyTorch model (architecture rebuilt from its policy)
    model = autoprune.load_compressed(Path(args.out) / "model.apz")

    # 5. the exported ONNX model gives the same logits as the reloaded PyTorch model
    x = load_dataset("digits").x_test[:32]
    with torch.no_grad():
        torch_logits = model(x).numpy()
    session = ort.InferenceSession(str(applied.files["onnx"]), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    gap = float(np.abs(onnx_logits - torch_logits).max())
    print(f"ONNX Runtime vs reloaded model: max |logit difference| = {gap:.2e}")
    assert gap < 1e-3, gap


if __name__ == "__main__":
    main()
