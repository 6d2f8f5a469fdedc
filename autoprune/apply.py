"""Apply a discovered policy to a trained model and produce deployable files.

``apply_policy`` compresses a fresh copy, fine-tunes it (with distillation from the
original), codes the weights into a ``.apz`` file, exports ``.pt`` / ``.onnx`` (and a static
int8 ``.onnx`` when the policy quantizes to 8 bits or fewer) and reports accuracy, size,
latency and energy against the original — the numbers a user needs before deploying.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autoprune.coding import ApzReport, extras_from_state_dict, write_apz
from autoprune.compress import (
    ChannelPlan,
    CompressionOptions,
    compress_model,
    export_quantized,
    pruned_specs,
    remove_activation_quant,
    squash,
)
from autoprune.cost import CostModel
from autoprune.data import DataSplits
from autoprune.evaluation import cost_metrics
from autoprune.export import export_bundle, export_onnx, measure_latency, onnx_node_names_for
from autoprune.policy import FLOAT_BITS, Policy
from autoprune.specs import discover_layers
from autoprune.training import ProgressFn, evaluate, finetune


@dataclass
class ApplyResult:
    """What :func:`apply_policy` produced and measured."""

    model: nn.Module
    files: dict[str, Path] = field(default_factory=dict)
    original: dict[str, float] = field(default_factory=dict)
    compressed: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(metric, original, compressed, change) rows for a table."""
        out = []
        for key, value in self.compressed.items():
            base = self.original.get(key)
            change = "" if not base else f"{value / base:.3g}x"
            out.append((key, _fmt(base), _fmt(value), change))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON summary."""
        return {
            "files": {k: str(v) for k, v in self.files.items()},
            "original": self.original,
            "compressed": self.compressed,
        }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.0f}"


def onnx_accuracy(path: Path, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Top-1 accuracy of an exported ONNX model under ONNX Runtime."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    correct = 0
    for start in range(0, len(x), batch):
        logits = session.run(None, {name: x[start : start + batch].numpy()})[0]
        correct += int((np.argmax(logits, axis=1) == y[start : start + batch].numpy()).sum())
    return correct / len(x)


def finalize_and_code(
    compressed: nn.Module, layer_names: list[str], path: Path, metadata: dict | None = None
) -> ApzReport:
    """Write the coded weights of ``compressed`` to ``path`` and make it a plain model.

    The coded form is read while the quantizers are in place; afterwards activation
    fake-quant is removed and parametrizations are squashed, so the model exports to ONNX.
    """
    coded = export_quantized(compressed, layer_names)
    remove_activation_quant(compressed)
    squash(compressed)
    extras = extras_from_state_dict(compressed.state_dict(), layer_names)
    return write_apz(path, coded, extras, metadata=metadata)


def apply_policy(
    model: nn.Module,
    policy: Policy,
    data: DataSplits,
    cost_model: CostModel,
    out_dir: Path,
    *,
    finetune_epochs: int = 0,
    lr: float = 0.01,
    options: CompressionOptions | None = None,
    latency_repeats: int = 30,
    on_batch: ProgressFn | None = None,
) -> ApplyResult:
    """Compress, fine-tune, code and export ``model`` under ``policy`` into ``out_dir``."""
    model = model.eval()
    specs = discover_layers(model, data.input_shape)
    policy.validate(specs)
    example = torch.zeros((1, *data.input_shape))
    calib = [data.x_train[i : i + 128] for i in range(0, min(len(data.x_train), 512), 128)]
    compressed = compress_model(model, policy, example, calib, options)
    if finetune_epochs:
        finetune(compressed, data, finetune_epochs, lr, teacher=model, on_batch=on_batch)
    result = ApplyResult(compressed)
    result.original["test_accuracy"] = evaluate(model, data.x_test, data.y_test)
    result.compressed["test_accuracy"] = evaluate(compressed, data.x_test, data.y_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    apz = finalize_and_code(
        compressed, [s.name for s in specs], out_dir / "model.apz", {"policy": policy.to_dict()}
    )
    int8 = any(lp.w_bits <= 8 for lp in policy.layers.values())
    files = _export(compressed, model, policy, example, calib, out_dir, int8)
    files["apz"] = out_dir / "model.apz"
    result.files = files
    _measure(result, model, policy, data, specs, cost_model, example, latency_repeats)
    result.original["size_bytes"] = float(4 * sum(t.numel() for t in model.state_dict().values()))
    result.compressed["size_bytes"] = float(apz.file_bytes)
    if "int8_onnx" in files:
        result.compressed["int8_test_accuracy"] = onnx_accuracy(
            files["int8_onnx"], data.x_test, data.y_test
        )
    policy.save(out_dir / "policy.json")
    (out_dir / "report.json").write_text(json.dumps(result.to_dict(), indent=2))
    files["report"] = out_dir / "report.json"
    return result


def _export(
    compressed: nn.Module,
    original: nn.Module,
    policy: Policy,
    example: torch.Tensor,
    calib: list[torch.Tensor],
    out_dir: Path,
    int8: bool,
) -> dict[str, Path]:
    original_onnx = export_onnx(original, example, out_dir / "original.onnx")
    exclude: list[str] = []
    if int8:
        float_layers = [n for n, lp in policy.layers.items() if lp.w_bits == FLOAT_BITS]
        if float_layers:
            onnx_tmp = export_onnx(compressed, example, out_dir / ".probe.onnx")
            nodes = onnx_node_names_for(onnx_tmp, float_layers)
            onnx_tmp.unlink()
            exclude = [node for names in nodes.values() for node in names]
    files = export_bundle(
        compressed,
        example,
        out_dir,
        calibration=[b.numpy() for b in calib] if int8 else None,
        int8=int8,
        exclude_nodes=exclude,
    )
    files["original_onnx"] = original_onnx
    return files


def _measure(
    result: ApplyResult,
    model: nn.Module,
    policy: Policy,
    data: DataSplits,
    specs: list,
    cost_model: CostModel,
    example: torch.Tensor,
    repeats: int,
) -> None:
    plan = ChannelPlan.build(model, example)
    keep = policy.keep_ratios()
    base_costs = cost_metrics(cost_model.estimate(specs, Policy.identity(specs).layers))
    new_costs = cost_metrics(cost_model.estimate(pruned_specs(specs, plan, keep), policy.layers))
    for key in ("macs", "params", "energy"):
        result.original[key] = base_costs[key]
        result.compressed[key] = new_costs[key]
    result.original["predicted_latency_ms"] = base_costs["latency"]
    result.compressed["predicted_latency_ms"] = new_costs["latency"]
    shape = tuple(data.input_shape)

    def measure(path: Path) -> float:
        return measure_latency(path, shape, runtime="onnxruntime", repeats=repeats).median_ms

    result.original["onnx_latency_ms"] = measure(result.files["original_onnx"])
    result.compressed["onnx_latency_ms"] = measure(result.files["onnx"])
    if "int8_onnx" in result.files:
        result.compressed["int8_onnx_latency_ms"] = measure(result.files["int8_onnx"])
