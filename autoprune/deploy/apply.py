"""Apply a discovered policy to a trained model and produce deployable files.

``apply_policy`` compresses a fresh copy by exactly the path the search scored the policy
with (the settings recorded in the policy's ``meta["evaluation"]``: criterion, recovery,
calibration batches, validation images), so before any fine-tuning it reproduces the
search's validation accuracy. It then fine-tunes (with distillation from the original),
codes the weights into a ``.apz`` file, exports ``.pt`` / ``.onnx`` (and a static int8
``.onnx`` when the policy quantizes to 8 bits or fewer) and reports accuracy, size, latency
and energy against the original — the numbers a user needs before deploying.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autoprune.compress import independent_copy, quantize_weights
from autoprune.core.budget import Budget
from autoprune.core.policy import FLOAT_BITS, Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import FINETUNE_LR, ProgressFn, finetune, top1_accuracy
from autoprune.cost import CostModel
from autoprune.data import DataSplits
from autoprune.deep_compression import PruneSchedule, gradual_prune
from autoprune.export import export_bundle, export_onnx, onnx_node_names_for
from autoprune.latency import measure_latency
from autoprune.workflow.coded_file import finalize_and_code, trim_to_fit, with_trimmed
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator
from autoprune.workflow.session import evaluator_config


@dataclass
class ApplyResult:
    """What :func:`apply_policy` produced and measured."""

    model: nn.Module
    files: dict[str, Path] = field(default_factory=dict)
    original: dict[str, float] = field(default_factory=dict)
    compressed: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    """How the policy was scored: ``recorded`` (the policy carried the search's settings),
    ``same_images`` (the validation images match the search's), ``search_val_accuracy``."""
    trimmed: dict[str, int] = field(default_factory=dict)
    """Weights pruned beyond the policy so that the coded file meets its size budget."""
    finetune: dict[str, Any] = field(default_factory=dict)
    """``val_accuracy`` after fine-tuning and whether the fine-tuned model was ``kept`` (it
    is not when it scores below the model before fine-tuning, e.g. after a divergence)."""

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
            "evaluation": self.evaluation,
            "trimmed": self.trimmed,
            "finetune": self.finetune,
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


def evaluation_config(policy: Policy) -> EvaluatorConfig:
    """The settings ``policy`` was scored with (its ``meta["evaluation"]``).

    A policy without a record (hand-written, or from an older version) gets the defaults of
    a search.

    Raises:
        AutopruneError: when the record is malformed (checked before any slow work).
    """
    record = policy.meta.get("evaluation")
    if not isinstance(record, dict):
        return evaluator_config(SearchConfig())
    settings = {k: v for k, v in record.items() if k not in RECORD_EXTRAS}
    return EvaluatorConfig.from_dict(settings)


def _finetuned(
    evaluator: PolicyEvaluator,
    compressed: nn.Module,
    policy: Policy,
    epochs: int,
    lr: float,
    on_batch: ProgressFn | None,
) -> nn.Module:
    """The fine-tuned model: staged for sparse + quantized policies, else a tuned copy of
    ``compressed`` (which stays as it was)."""
    if staged_finetune_applies(policy):
        return staged_finetune(evaluator, policy, epochs, lr, on_batch)
    tuned = independent_copy(compressed)
    finetune(tuned, evaluator.data, epochs, lr, teacher=evaluator.model, on_batch=on_batch)
    return tuned.eval()


def staged_finetune_applies(policy: Policy) -> bool:
    """Whether some layer is both sparsified and quantized (the Deep Compression case)."""
    return any(lp.sparsity > 0 and lp.w_bits != FLOAT_BITS for lp in policy.layers.values())


def staged_finetune(
    evaluator: PolicyEvaluator,
    policy: Policy,
    epochs: int,
    lr: float,
    on_batch: ProgressFn | None = None,
) -> nn.Module:
    """Fine-tune in Deep Compression's order: prune gradually to the policy's sparsities
    while retraining the float weights (ceil(epochs/2) epochs, Zhu & Gupta's cubic schedule),
    then quantize them and tune the codebooks for the rest.

    Channels (and activation quantizers) are applied first, as the search did. Pruning the
    trained weights in one shot to 90%+ and retraining recovers far less than pruning
    gradually during the same epochs (BENCHMARKS.md, "Size budgets through the search"), and
    quantizing first leaves only the codebooks to train.
    """
    dense = {n: replace(lp, w_bits=FLOAT_BITS, sparsity=0.0) for n, lp in policy.layers.items()}
    model = evaluator.compressor.compress(replace(policy, layers=dense))
    first = (epochs + 1) // 2
    finals = {n: lp.sparsity for n, lp in policy.layers.items()}
    gradual_prune(model, evaluator.data, finals, PruneSchedule(), epochs=first, lr=lr)
    quantize_weights(model.eval(), dict(policy.layers))
    if epochs > first:
        teacher = evaluator.model
        finetune(model, evaluator.data, epochs - first, lr, teacher=teacher, on_batch=on_batch)
    return model.eval()


def budget_limits(policy: Policy, evaluator: PolicyEvaluator) -> dict[str, float]:
    """The limits of the budget ``policy`` was searched under, against ``evaluator``'s
    original model (empty for a policy without a budget)."""
    return Budget.parse(policy.budget or None).limits(evaluator.baseline_metrics)


RECORD_EXTRAS = ("dataset", "val_images", "val_fingerprint")
"""Keys of a policy's evaluation record that describe the data rather than the settings."""


def apply_policy(
    model: nn.Module,
    policy: Policy,
    data: DataSplits,
    cost_model: CostModel,
    out_dir: Path,
    *,
    finetune_epochs: int = 0,
    lr: float = FINETUNE_LR,
    evaluation: EvaluatorConfig | None = None,
    latency_repeats: int = 30,
    on_batch: ProgressFn | None = None,
) -> ApplyResult:
    """Compress, fine-tune, code and export ``model`` under ``policy`` into ``out_dir``.

    Args:
        evaluation: Scoring settings (default: those recorded in the policy, so that the
            compressed model before fine-tuning is the one the search scored).
    """
    model = model.eval()
    specs = discover_layers(model, data.input_shape)
    policy.validate(specs)
    recorded = isinstance(policy.meta.get("evaluation"), dict)
    config = evaluation if evaluation is not None else evaluation_config(policy)
    evaluator = PolicyEvaluator(model, data, specs, cost_model, config)
    limits = budget_limits(policy, evaluator)
    compressed = evaluator.compress(policy)
    result = ApplyResult(compressed)
    result.evaluation = _provenance(policy, evaluator, recorded)
    result.original["val_accuracy"] = evaluator.baseline_metrics["accuracy"]
    result.compressed["val_accuracy"] = evaluator.accuracy(compressed, copy_model=True)
    if finetune_epochs:
        tuned = _finetuned(evaluator, compressed, policy, finetune_epochs, lr, on_batch)
        tuned_val = evaluator.accuracy(tuned, copy_model=True)
        kept = tuned_val >= result.compressed["val_accuracy"]
        result.finetune = {"epochs": finetune_epochs, "val_accuracy": tuned_val, "kept": kept}
        if kept:  # else fine-tuning diverged or hurt: ship the model the search scored
            compressed = result.model = tuned
    names = [s.name for s in specs]
    metadata = {"policy": policy.to_dict()}
    trimmed = trim_to_fit(compressed, names, limits, metadata)
    result.trimmed = trimmed
    result.original["test_accuracy"] = top1_accuracy(model, data.x_test, data.y_test)
    result.compressed["test_accuracy"] = top1_accuracy(compressed, data.x_test, data.y_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    apz = finalize_and_code(
        compressed, names, out_dir / "model.apz", with_trimmed(metadata, trimmed)
    )
    int8 = any(lp.w_bits <= 8 for lp in policy.layers.values())
    example = evaluator.example_input
    files = _export(compressed, model, policy, example, evaluator.calib, out_dir, int8)
    files["apz"] = out_dir / "model.apz"
    result.files = files
    _measure(result, evaluator, policy, data, latency_repeats)
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


def _scored_accuracy(policy: Policy) -> float | None:
    """The search's accuracy of the policy on the original weights (before any retraining)."""
    metrics = policy.metrics
    return metrics.get("accuracy_without_retraining", metrics.get("accuracy"))


def _provenance(policy: Policy, evaluator: PolicyEvaluator, recorded: bool) -> dict[str, Any]:
    """Whether this evaluation repeats the search's: same settings, same images."""
    record = policy.meta.get("evaluation") if recorded else None
    here = evaluator.record()
    same = (
        record is not None
        and bool(record)
        and record.get("val_fingerprint") == here["val_fingerprint"]
    )
    return {
        "recorded": recorded,
        "same_images": same,
        "val_images": here["val_images"],
        "search_val_accuracy": _scored_accuracy(policy) if recorded else None,
        "settings": evaluator.config.to_dict(),
    }


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
    evaluator: PolicyEvaluator,
    policy: Policy,
    data: DataSplits,
    repeats: int,
) -> None:
    base_costs = evaluator.baseline_metrics
    new_costs = evaluator.costs(policy)
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
