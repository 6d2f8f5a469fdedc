"""Retraining where the old fine-tune diverged (issue 27): LeNet-300-100 on a Fashion-MNIST
subset, policies with Deep Compression's and ADMM's shapes (k-means, 1- to 5-bit).

For each policy the model is compressed by the search's path (:class:`Compressor`), then
retrained for ``--epochs`` twice from the same start: by the old loop (``finetune``, each
k-means centroid stepping by its members' summed gradient) and by
:func:`autoprune.compress.retrain.retrain` (the step divided by the member count, the best
epoch kept, divergence retried lower). Both are distilled from the float model and scored
on the same validation images. Writes ``benchmarks/results/retrain_divergence.json``::

    OMP_NUM_THREADS=1 python benchmarks/retrain_divergence.py --train 6000 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from autoprune.compress import Compressor, independent_copy
from autoprune.compress.retrain import retrain
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import TrainConfig, finetune, split_accuracy, train
from autoprune.data import DataSplits, load_dataset
from autoprune.workflow.baseline import build_for


def _kmeans(bits: tuple[int, int, int], sparsity: tuple[float, float, float]) -> dict:
    names = ("fc1", "fc2", "fc3")
    return {
        n: LayerPolicy(w_bits=b, sparsity=s, quantizer="kmeans")
        for n, b, s in zip(names, bits, sparsity, strict=True)
    }


POLICIES = {
    "deep-compression-like (5/5/5 bits)": _kmeans((5, 5, 5), (0.975, 0.92, 0.7)),
    "admm-like (1/2/4 bits)": _kmeans((1, 2, 4), (0.95, 0.85, 0.5)),
}


def _data(train_images: int) -> DataSplits:
    full = load_dataset("fashion-mnist")
    (xt, yt), (xv, yv), (xs, ys) = (full.tensors(s) for s in ("train", "val", "test"))
    n = train_images
    return DataSplits.from_tensors(
        "fashion-mnist-subset", xt[:n], yt[:n], xv[:5000], yv[:5000], xs[:2000], ys[:2000], 10
    )


def main() -> None:
    """Measure and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=6000, help="training images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = _data(args.train)
    torch.manual_seed(0)
    model = build_for("lenet300", data)
    train(model, data, TrainConfig(epochs=4, lr=0.05))
    model.eval()
    x_train = data.tensors("train")[0]
    calib = [x_train[i * 128 : (i + 1) * 128] for i in range(4)]
    compressor = Compressor(model, torch.zeros(1, *data.input_shape), calib)
    specs = discover_layers(model, data.input_shape)
    rows = {"float": split_accuracy(model, data), "settings": vars(args), "policies": {}}
    for name, layers in POLICIES.items():
        compressed = compressor.compress(Policy.for_specs(specs, layers))
        old = independent_copy(compressed)
        started = time.perf_counter()
        finetune(old, data, args.epochs, args.lr, teacher=model)
        old_seconds = time.perf_counter() - started
        new = independent_copy(compressed)
        started = time.perf_counter()
        result = retrain(new, data, args.epochs, lr=args.lr, teacher=model)
        rows["policies"][name] = {
            "before": split_accuracy(compressed, data),
            "old_finetune": split_accuracy(old.eval(), data),
            "retrain": result.score,
            "retrain_detail": result.to_dict(),
            "seconds": {"old": old_seconds, "retrain": time.perf_counter() - started},
        }
        print(name, json.dumps(rows["policies"][name]), flush=True)
    out = Path(__file__).parent / "results" / "retrain_divergence.json"
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
