"""Every torchvision classification family through the evaluation path: the coverage table.

For the smallest model of each family (``tests/torchvision/_roundtrip.py``: random weights,
random 3xHxW images, 3x64x64 unless the family needs more), a uniform keep ratio pruned to
50% of the MACs, scored as the search scores it, exported to ONNX (compared with PyTorch in
ONNX Runtime) and coded into an ``.apz`` (decoded and compared bit for bit). The same run as
the ``torchvision`` tests, with the numbers kept. Needs torchvision::

    OMP_NUM_THREADS=1 .venv-tv/bin/python benchmarks/torchvision_coverage.py

Writes ``benchmarks/results/torchvision_coverage.json`` and prints the Markdown table of
``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch
from torchvision_latency import ROOT, roundtrip


def table(rows: list[dict]) -> str:
    """The Markdown table: model | input | prunable groups | MACs ratio | ONNX ok | time."""
    lines = [
        "| model | input | prunable groups | MACs ratio reached | ONNX ok (max rel. error) "
        "| .apz exact | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | | | {r['error']} | | | |")
            continue
        onnx = f"yes ({r['onnx_error']:.1e})" if r["onnx_ok"] else f"no ({r['onnx_error']:.1e})"
        size = "x".join(map(str, r["input_shape"]))
        lines.append(
            f"| {r['model']} | {size} | {r['groups']} | {r['macs_ratio']:.3f} | {onnx} "
            f"| {'yes' if r['apz_exact'] else 'no'} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: every family")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "torchvision_coverage.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    rt = roundtrip()
    names = args.models or sorted(rt.FAMILIES)
    rows = []
    started = time.perf_counter()
    for name in names:
        if name in rt.NOT_YET:
            rows.append({"model": name, "error": f"not covered yet: {rt.NOT_YET[name]}"})
            continue
        try:
            outcome = dataclasses.asdict(rt.run_family(name, rt.FAMILIES[name]))
            outcome["onnx_ok"] = outcome["onnx_error"] <= rt.ONNX_TOLERANCE
        except Exception as exc:  # noqa: BLE001 - a row says what failed
            outcome = {"model": name, "error": f"{type(exc).__name__}: {exc}"[:200]}
        rows.append(outcome)
        print(json.dumps(outcome), flush=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - started, 1),
        "onnx_tolerance": rt.ONNX_TOLERANCE,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
