"""The GPU check: the same evaluations on CPU and CUDA, a fine-tune step, a Ray GPU worker.

One command, a few minutes, on a machine with a CUDA device:

    python benchmarks/gpu_check.py --model vgg_small --dataset fashion-mnist --out gpu.json

1. Trains (or loads the cached) baseline, then scores the same seeded policies through the
   search's evaluation path on ``cpu`` and on ``cuda``: accuracies must agree within
   ``--tolerance`` (float sums differ in their last bits, so a few images may flip), and the
   median seconds per evaluation on each device are reported.
2. Times one epoch of fine-tuning a pruned model on each device.
3. Starts Ray with one GPU and one worker actor that reserves it; the actor reports the GPU
   Ray gave it and the device its session's model lives on (``--device auto`` there).

It prints one JSON document; a machine without CUDA prints ``{"cuda": false}`` and exits 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from autoprune.core.policy import Policy
from autoprune.core.training import finetune
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession, prepare_search


def session_on(device: str, args: argparse.Namespace) -> SearchSession:
    config = SearchConfig(
        model=args.model,
        dataset=args.dataset,
        device=device,
        val_samples=args.val_samples,
        runs_dir=str(args.runs_dir),
        targets=("flops=0.5",),
    )
    return prepare_search(config)


def policies(session: SearchSession, count: int) -> list[Policy]:
    """``count`` uniform pruning policies, keep ratios evenly from 0.35 to 1."""
    specs = session.evaluator.specs
    ratios = torch.linspace(0.35, 1.0, count).tolist()
    return [Policy.uniform(specs, keep_ratio=ratio) for ratio in ratios]


def scores(session: SearchSession, chosen: list[Policy]) -> tuple[list[float], float]:
    """Accuracy of each policy and the median seconds per (uncached) evaluation."""
    accuracies, seconds = [], []
    for policy in chosen:
        started = time.perf_counter()
        accuracies.append(session.evaluator.evaluate(policy).metrics["accuracy"])
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return accuracies, statistics.median(seconds)


def finetune_seconds(session: SearchSession, policy: Policy) -> float:
    model = session.evaluator.compress(policy)
    started = time.perf_counter()
    finetune(model, session.data, 1, lr=0.01)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def ray_worker(args: argparse.Namespace) -> dict:
    """One Ray actor reserving a GPU: which GPU it got and where its model lives."""
    import ray

    ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_gpus=1)
    class Probe:
        def report(self) -> dict:
            session = session_on("auto", args)
            device = next(session.model.parameters()).device
            return {"gpu_ids": ray.get_gpu_ids(), "model_device": str(device)}

    try:
        return ray.get(Probe.remote().report.remote(), timeout=600)
    finally:
        ray.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg_small")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--policies", type=int, default=8)
    parser.add_argument("--val-samples", type=int, default=5000)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--against", default="cuda", help="Second device (cpu: a dry run of this script)."
    )
    args = parser.parse_args()
    if args.against != "cpu" and not torch.cuda.is_available():
        print(json.dumps({"cuda": False}))
        return 1
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    report: dict = {"against": args.against, "gpu": gpu_name, "torch": torch.__version__}
    cpu, gpu = session_on("cpu", args), session_on(args.against, args)
    chosen = policies(cpu, args.policies)
    cpu_acc, cpu_s = scores(cpu, chosen)
    gpu_acc, gpu_s = scores(gpu, chosen)
    worst = max(abs(a - b) for a, b in zip(cpu_acc, gpu_acc, strict=True))
    report["evaluation"] = {
        "policies": len(chosen),
        "cpu_accuracy": cpu_acc,
        "second_accuracy": gpu_acc,
        "max_abs_difference": worst,
        "within_tolerance": worst <= args.tolerance,
        "cpu_seconds_median": cpu_s,
        "second_seconds_median": gpu_s,
    }
    report["finetune_epoch_seconds"] = {
        "cpu": finetune_seconds(cpu, chosen[0]),
        "second": finetune_seconds(gpu, chosen[0]),
    }
    if not args.no_ray and args.against != "cpu":
        report["ray_worker"] = ray_worker(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0 if report["evaluation"]["within_tolerance"] else 2


if __name__ == "__main__":
    sys.exit(main())
