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

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autoprune.coding import read_apz
from autoprune.core.budget import Budget
from autoprune.core.effective import EffectiveLayer
from autoprune.core.policy import FLOAT_BITS, Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import FINETUNE_LR, ProgressFn, split_accuracy
from autoprune.cost import CostModel
from autoprune.data import DataSplits
from autoprune.deploy.retraining import retrained_model, staged_finetune_applies
from autoprune.deploy.shipped import load_trained
from autoprune.export import export_bundle, export_onnx, onnx_node_names_for
from autoprune.latency import measure_latency
from autoprune.system.atomic_dir import atomic_dir
from autoprune.workflow.coded_file import finalize_and_code, trim_to_fit, with_trimmed
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import (
    EvaluatorConfig,
    FinetuneFn,
    MetricFn,
    PolicyEvaluator,
)
from autoprune.workflow.inputs import priced_shape
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
    layers: dict[str, EffectiveLayer] = field(default_factory=dict)
    """Each layer as the compressed model has it (coupled layers follow their controller)."""

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


def onnx_accuracy(path: Path, batches: Iterable[tuple[torch.Tensor, Any]]) -> float:
    """Top-1 accuracy of an exported ONNX model under ONNX Runtime over ``batches``."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    correct = seen = 0
    for xb, yb in batches:
        logits = session.run(None, {name: xb.detach().cpu().numpy()})[0]
        labels = torch.as_tensor(yb).cpu().numpy()
        correct += int((np.argmax(logits, axis=1) == labels).sum())
        seen += len(labels)
    return correct / max(seen, 1)


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


def budget_limits(policy: Policy, evaluator: PolicyEvaluator) -> dict[str, float]:
    """The limits of the budget ``policy`` was searched under, against ``evaluator``'s
    original model (empty for a policy without a budget)."""
    return Budget.parse(policy.budget or None).limits(evaluator.baseline_metrics)


RECORD_EXTRAS = ("dataset", "val_images", "val_fingerprint", "metric", "source")
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
    metric: MetricFn | None = None,
    finetune_fn: FinetuneFn | None = None,
    source: Mapping[str, Any] | None = None,
    trained: Path | None = None,
) -> ApplyResult:
    """Compress, fine-tune, code and export ``model`` under ``policy`` into ``out_dir``.

    Args:
        evaluation: Scoring settings (default: those recorded in the policy, so that the
            compressed model before fine-tuning is the one the search scored).
        metric: A user's ``evaluate(model) -> float`` (higher is better) scoring the
            validation instead of top-1 accuracy, as in the search.
        finetune_fn: A user's ``finetune(model, epochs)`` replacing the built-in loop.
        source: What the model was built from (recorded in the exported files, so that
            :func:`autoprune.load_compressed` rebuilds it with no other argument).
        trained: A one-shot method's retrained model (``trained_model.apz`` of a
            ``deep-compression`` or ``admm`` search) to ship instead of compressing
            ``model`` (:mod:`autoprune.deploy.shipped`).
    """
    model = model.eval()
    specs = discover_layers(model, priced_shape(policy.meta.get("evaluation"), data.input_shape))
    policy.validate(specs)
    recorded = isinstance(policy.meta.get("evaluation"), dict)
    config = evaluation if evaluation is not None else evaluation_config(policy)
    evaluator = PolicyEvaluator(
        model,
        data,
        specs,
        cost_model,
        config,
        metric=metric,
        finetune_fn=finetune_fn,
        source=source,
    )
    limits = budget_limits(policy, evaluator)
    compressed = evaluator.compress(policy) if trained is None else load_trained(model, trained)
    result = ApplyResult(compressed)
    result.layers = policy.effective(evaluator.plan, config.compression.round_to)
    result.evaluation = _provenance(policy, evaluator, recorded)
    if trained is not None:  # the search printed this model's accuracy, not the policy's
        result.evaluation |= {"shipped": str(trained), "search_val_accuracy": _trained(policy)}
    result.original["val_accuracy"] = evaluator.baseline_metrics["accuracy"]
    result.compressed["val_accuracy"] = evaluator.accuracy(compressed, copy_model=True)
    if finetune_epochs:
        staged = trained is None and staged_finetune_applies(policy)
        tuned, runs = retrained_model(
            evaluator, compressed, policy, finetune_epochs, lr, on_batch, staged
        )
        tuned_val = evaluator.accuracy(tuned, copy_model=True)
        kept = tuned_val > result.compressed["val_accuracy"]
        result.finetune = {
            "epochs": finetune_epochs,
            "val_accuracy": tuned_val,
            "kept": kept,
            "val_images": result.evaluation["val_images"],
            "retrain": [run.to_dict() for run in runs],
        }
        if kept:  # else retraining found nothing better: ship the model the search scored
            compressed = result.model = tuned
    names = [s.name for s in specs]
    metadata = {"policy": _file_policy(policy, trained)}  # as the size model counts
    trimmed = trim_to_fit(compressed, names, limits, metadata)
    result.trimmed = trimmed
    if data.num_classes is not None:  # top-1 on the test split (a classification task)
        result.original["test_accuracy"] = split_accuracy(model, data, "test")
        result.compressed["test_accuracy"] = split_accuracy(compressed, data, "test")
    with atomic_dir(out_dir, replaces=EXPORT_FILES) as staging:
        _write_export(result, evaluator, model, policy, data, staging, out_dir, latency_repeats)
    return result


EXPORT_FILES = (
    "model.apz",
    "model.pt",
    "model.onnx",
    "model.int8.onnx",
    "model.pt2",
    "original.onnx",
    "policy.json",
    "report.json",
)
"""What an export folder holds; a new export replaces all of them at once (other files in
the folder are kept)."""


def _on_cpu(module: nn.Module) -> nn.Module:
    """``module`` when it is on the CPU, else a CPU copy (the caller's stays where it is)."""
    if all(t.device.type == "cpu" for t in module.state_dict().values()):
        return module
    return copy.deepcopy(module).cpu()


def _write_export(
    result: ApplyResult,
    evaluator: PolicyEvaluator,
    model: nn.Module,
    policy: Policy,
    data: DataSplits,
    staging: Path,
    out_dir: Path,
    latency_repeats: int,
) -> None:
    """Code, export, measure and report into ``staging``; ``result.files`` name the paths
    the files will have in ``out_dir`` once the folder is swapped in. Files are written
    from CPU copies, whatever device the models ran on."""
    compressed, model = _on_cpu(result.model), _on_cpu(model)
    names = [s.name for s in evaluator.specs]
    shipped = result.evaluation.get("shipped")
    file_policy = _file_policy(policy, None if shipped is None else Path(shipped))
    metadata = with_trimmed({"policy": file_policy}, result.trimmed)
    apz = finalize_and_code(compressed, names, staging / "model.apz", metadata)
    int8 = any(lp.w_bits <= 8 for lp in policy.layers.values())
    example = evaluator.example_input.cpu()
    calib = [batch.cpu() for batch in evaluator.calib]
    files = _export(compressed, model, policy, example, calib, staging, int8)
    files["apz"] = staging / "model.apz"
    result.files = files
    _measure(result, evaluator, policy, data, latency_repeats)
    result.original["size_bytes"] = float(4 * sum(t.numel() for t in model.state_dict().values()))
    result.compressed["size_bytes"] = float(apz.file_bytes)
    if "int8_onnx" in files and data.num_classes is not None:
        result.compressed["int8_test_accuracy"] = onnx_accuracy(
            files["int8_onnx"], data.loader("test", 256)
        )
    truth = policy.with_effective(evaluator.plan, evaluator.config.compression.round_to)
    truth.save(staging / "policy.json")
    files["report"] = staging / "report.json"
    result.files = {kind: out_dir / path.name for kind, path in files.items()}
    (staging / "report.json").write_text(json.dumps(result.to_dict(), indent=2))


def _file_policy(policy: Policy, trained: Path | None) -> dict[str, Any]:
    """The policy a coded file records: the one-shot method's own file's, when shipping its
    model (the same header, so the same bytes within the budget), else ``policy``'s."""
    if trained is not None:
        recorded = read_apz(trained)[2].get("policy")
        if isinstance(recorded, dict):
            return recorded
    return policy.without_effective().to_dict()


def _trained(policy: Policy) -> float | None:
    """The accuracy a one-shot search printed: its own retrained model's."""
    return policy.metrics.get("accuracy")


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
