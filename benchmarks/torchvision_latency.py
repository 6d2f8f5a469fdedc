"""ONNX Runtime batch-1 latency at deployment size: torchvision resnet18 and mobilenet_v2 at
3x224x224, original vs pruned to 50% of the MACs (uniform keep ratio, the evaluation path)
vs pruned + static int8 (QDQ, per-channel weights), the three timed alternately in one run.

Goals (issue 25): pruned fp32 at least 80% of the MACs ratio's ideal speed-up
(``original / pruned MACs``), pruned + int8 at least 3x the original.

Random weights (nothing is downloaded); BatchNorm statistics are settled on random images
so activations have unit scale, and int8 is calibrated on them. Needs torchvision, so run
it in the torchvision environment (``make setup-tv``)::

    OMP_NUM_THREADS=1 .venv-tv/bin/python benchmarks/torchvision_latency.py --threads 1

Writes ``benchmarks/results/torchvision_latency.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from autoprune.export import export_onnx, quantize_onnx_int8
from autoprune.latency import pinned, quantile, time_calls

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("resnet18", "mobilenet_v2")
SIDE = 224


def roundtrip() -> ModuleType:
    """``tests/torchvision/_roundtrip.py`` (the evaluator, policy and data helpers)."""
    path = ROOT / "tests" / "torchvision" / "_roundtrip.py"
    spec = importlib.util.spec_from_file_location("tv_roundtrip", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def session(path: Path, threads: int) -> ort.InferenceSession:
    """An ONNX Runtime session with every graph optimisation, on ``threads`` threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def build_files(rt: ModuleType, name: str, folder: Path, round_to: int | None) -> dict[str, Any]:
    """Original, pruned and pruned-int8 ONNX files of ``name`` and the pruned MACs ratio."""
    evaluator = rt.evaluator_for(name, SIDE, round_to=round_to)
    policy = rt.uniform_policy(evaluator)
    pruned = evaluator.compress(policy)
    macs = evaluator.costs(policy, ("macs",))["macs"] / evaluator.baseline_metrics["macs"]
    example = torch.zeros(1, 3, SIDE, SIDE)
    files = {
        "original": export_onnx(evaluator.model, example, folder / f"{name}.onnx"),
        "pruned": export_onnx(pruned, example, folder / f"{name}_pruned.onnx"),
    }
    calibration = [b.numpy() for b in evaluator.calib]
    files["pruned_int8"] = quantize_onnx_int8(
        files["pruned"], folder / f"{name}_pruned_int8.onnx", calibration
    )
    keep = next(iter(policy.keep_ratios().values()))
    return {"files": files, "macs_ratio": macs, "keep_ratio": keep}


def time_alternately(files: dict[str, Path], threads: int, rounds: int) -> dict[str, float]:
    """Median batch-1 ms of each file, the files called in turn every round."""
    x = np.random.default_rng(0).standard_normal((1, 3, SIDE, SIDE)).astype(np.float32)
    with pinned(threads):
        sessions = {label: session(path, threads) for label, path in files.items()}
        runs = [(lambda s=s: s.run(None, {s.get_inputs()[0].name: x})) for s in sessions.values()]
        samples = time_calls(runs, warmup=10, repeats=1, rounds=rounds)
    return {label: quantile(times, 0.5) for label, times in zip(sessions, samples, strict=True)}


def measure(
    rt: ModuleType, name: str, threads: int, rounds: int, round_to: int | None
) -> dict[str, Any]:
    """One row: latencies, speed-ups and whether the goals are met."""
    with tempfile.TemporaryDirectory() as tmp:
        built = build_files(rt, name, Path(tmp), round_to)
        ms = time_alternately(built["files"], threads, rounds)
    ideal = 1.0 / built["macs_ratio"]
    fp32 = ms["original"] / ms["pruned"]
    int8 = ms["original"] / ms["pruned_int8"]
    return {
        "model": name,
        "input": f"3x{SIDE}x{SIDE}",
        "round_to": round_to,
        "keep_ratio": round(built["keep_ratio"], 4),
        "macs_ratio": round(built["macs_ratio"], 4),
        "ms": {k: round(v, 3) for k, v in ms.items()},
        "ideal_speedup": round(ideal, 3),
        "pruned_speedup": round(fp32, 3),
        "pruned_share_of_ideal": round(fp32 / ideal, 3),
        "int8_speedup": round(int8, 3),
        "fp32_goal_met": fp32 >= 0.8 * ideal,
        "int8_goal_met": int8 >= 3.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--rounds", type=int, default=60, help="timed calls of each model")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--round-to",
        type=int,
        nargs="+",
        default=[1, 8, 16],
        help="kept-channel multiples to compare (1: no rounding)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "torchvision_latency.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    rt = roundtrip()
    started = time.perf_counter()
    rows = [
        measure(rt, name, args.threads, args.rounds, None if multiple == 1 else multiple)
        for name in args.models
        for multiple in args.round_to
    ]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or '-'}",
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "rounds": args.rounds,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
