"""Deep Compression's three stages on a trained model (Han, Mao, Dally, ICLR 2016).

1. **Pruning** — per-layer target sparsities (given, or chosen by a sensitivity scan on the
   validation split), reached by iterative magnitude pruning with retraining on the cubic
   schedule of Zhu & Gupta (2017).
2. **Quantization** — k-means weight sharing over the kept weights (linear init; 8 bits for
   conv layers, 5 bits for fully connected layers by default), then fine-tuning of the
   centroids with the assignments frozen: each centroid's gradient is the sum of its
   members', and its step is divided by their count (:func:`autoprune.compress.retrain.
   retrain`: one learning rate then suits every cluster size; the best epoch is kept).
3. **Huffman coding** of the weight codes and relative indices.

Each stage's size is measured by writing a real ``.apz`` file: after pruning the kept float
values with relative indices (no Huffman), after quantization the codes with relative
indices (no Huffman), after Huffman the same with Huffman coding. Ratios compare the file
with the dense float32 original (every tensor of the state dict at 4 bytes).
"""

from __future__ import annotations

import copy
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from torch import nn
from torch.nn.utils import parametrize

from autoprune.coding import ApzReport, Layout
from autoprune.compress import export_quantized, quantize_weights
from autoprune.compress.retrain import retrain
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import LayerSpec, discover_layers
from autoprune.core.training import split_accuracy
from autoprune.data import DataSplits
from autoprune.deep_compression._coded import CodedModel
from autoprune.deep_compression._prune import PruneSchedule, PruneStep, gradual_prune
from autoprune.deep_compression._sensitivity import (
    DEFAULT_GRID,
    SensitivityScan,
    sensitivity_scan,
)

STAGES = ("original", "pruned", "quantized", "huffman")
"""Stage names of :attr:`DeepCompressionResult.stages`, in order."""


@dataclass(frozen=True)
class DeepCompressionConfig:
    """Settings of :func:`deep_compress`.

    Example:
        >>> DeepCompressionConfig(targets={"fc1": 0.92}).fc_bits
        5
    """

    targets: dict[str, float] | None = None
    """Final sparsity per layer; None: chosen by the sensitivity scan. Missing layers: 0."""
    tolerance: float = 0.02
    """Accuracy drop (fraction) a layer may cause alone, unretrained, in the scan."""
    grid: tuple[float, ...] = DEFAULT_GRID
    """Sparsities of the sensitivity scan."""
    scan_samples: int | None = 2000
    """Validation images of the scan (None: all)."""
    prune_epochs: int = 4
    """Retraining epochs during and after gradual pruning."""
    schedule: PruneSchedule = field(default_factory=PruneSchedule)
    """Cubic schedule: steps, ramp and initial sparsity."""
    prune_lr: float = 0.01
    """Peak learning rate of the pruning retraining (cosine)."""
    quant_epochs: int = 2
    """Centroid fine-tuning epochs after k-means."""
    quant_lr: float = 0.01
    """Peak learning rate of the centroid fine-tuning (a step of the members' mean gradient,
    :func:`autoprune.compress.retrain.retrain`)."""
    conv_bits: int = 8
    """k-means bits of convolution layers."""
    fc_bits: int = 5
    """k-means bits of fully connected layers."""
    layout: str = "relative"
    """Sparse layout of the ``.apz`` stages: ``relative`` (Deep Compression) or ``auto``."""
    seed: int = 0
    """Seed of the data order."""

    def check(self) -> None:
        """Raise :class:`AutopruneError` on a setting that cannot run."""
        for name, bits in (("conv_bits", self.conv_bits), ("fc_bits", self.fc_bits)):
            if not 1 <= bits <= 8:
                raise AutopruneError(f"{name} {bits} must be 1..8; Deep Compression used 8 and 5")
        if self.prune_epochs < 0 or self.quant_epochs < 0:
            raise AutopruneError("prune_epochs and quant_epochs must be >= 0")
        if self.schedule.steps < 1 or not 0 <= self.schedule.initial < 1:
            raise AutopruneError("schedule.steps must be >= 1 and schedule.initial in [0, 1)")
        if self.layout not in ("auto", "dense", "bitmap", "relative"):
            raise unknown_name("layout", self.layout, ["auto", "dense", "bitmap", "relative"])


@dataclass(frozen=True)
class StageReport:
    """Accuracy and measured file size after one stage.

    Attributes:
        stage: One of :data:`STAGES`.
        val_accuracy: Validation accuracy.
        test_accuracy: Test accuracy (reporting only).
        file_bytes: Size of the stage's ``.apz`` file (dense float32 bytes for ``original``).
        fp32_bytes: The dense float32 original (every state-dict tensor at 4 bytes).
        yang_bytes: Σ bits × nonzeros / 8 over the coded weights.
    """

    stage: str
    val_accuracy: float
    test_accuracy: float
    file_bytes: int
    fp32_bytes: int
    yang_bytes: float

    @property
    def ratio(self) -> float:
        """Compression ratio of the file against the dense float32 original."""
        return self.fp32_bytes / self.file_bytes if self.file_bytes else math.inf

    def to_dict(self) -> dict:
        """Plain-JSON form with the ratio."""
        return asdict(self) | {"ratio": self.ratio}


@dataclass
class DeepCompressionResult:
    """Outcome of :func:`deep_compress`.

    Attributes:
        policy: Per-layer sparsity and k-means bits (``quantizer="kmeans"``).
        coded: The compressed model (plain weights) and its coded weights.
        stages: Accuracy and size after each stage, keyed by :data:`STAGES`.
        targets: The final sparsity of every layer.
        prune_history: Scheduled and measured sparsity at each pruning step.
        scan: The sensitivity scan (None when targets were given).
    """

    policy: Policy
    coded: CodedModel
    stages: dict[str, StageReport]
    targets: dict[str, float]
    prune_history: list[PruneStep] = field(default_factory=list)
    scan: SensitivityScan | None = None

    @property
    def model(self) -> nn.Module:
        """The compressed model."""
        return self.coded.model

    def write_apz(self, path: str | Path, *, huffman: bool = True) -> ApzReport:
        """Write the compressed model to an ``.apz`` file (the policy in its metadata)."""
        meta = {"policy": self.policy.to_dict()}
        return self.coded.write_apz(path, huffman=huffman, metadata=meta)

    def to_dict(self) -> dict:
        """Plain-JSON summary (stages, targets, policy, scan)."""
        return {
            "stages": {name: report.to_dict() for name, report in self.stages.items()},
            "targets": self.targets,
            "policy": self.policy.to_dict(),
            "scan": self.scan.to_dict() if self.scan else None,
            "prune_history": [asdict(step) for step in self.prune_history],
        }


def _checked_targets(targets: dict[str, float], names: list[str]) -> dict[str, float]:
    for name, sparsity in targets.items():
        if name not in names:
            raise unknown_name("layer in targets", name, names)
        if not 0.0 <= sparsity < 1.0 or math.isnan(sparsity):
            raise AutopruneError(
                f"target sparsity {sparsity} of layer '{name}' is outside [0, 1); use e.g. 0.9"
            )
    return {name: float(targets.get(name, 0.0)) for name in names}


def _stage(
    stage: str, model: nn.Module, data: DataSplits, size: tuple[int, int, float]
) -> StageReport:
    model.eval()
    val = split_accuracy(model, data, "val")
    test = split_accuracy(model, data, "test")
    return StageReport(stage, val, test, *size)


def _file_stage(stage: str, model: nn.Module, data: DataSplits, report: ApzReport) -> StageReport:
    return _stage(stage, model, data, (report.file_bytes, report.fp32_bytes, report.yang_bytes))


def _bits(spec: LayerSpec, config: DeepCompressionConfig) -> int:
    return config.fc_bits if spec.kind == "linear" else config.conv_bits


def _policy(specs: list[LayerSpec], coded: CodedModel, targets: dict[str, float]) -> Policy:
    layers = {
        name: LayerPolicy(
            w_bits=q.bits, sparsity=(q.size - q.nonzeros) / q.size, quantizer="kmeans"
        )
        for name, q in coded.weights.items()
    }
    policy = Policy.for_specs(specs, layers)
    policy.meta = {"method": "deep-compression", "targets": targets}
    return policy


def _choose_targets(
    model: nn.Module, data: DataSplits, names: list[str], config: DeepCompressionConfig
) -> tuple[dict[str, float], SensitivityScan | None]:
    if config.targets is not None:
        return _checked_targets(config.targets, names), None
    n = config.scan_samples
    x, y = data.head("val", n)
    scan = sensitivity_scan(model, x, y, names, config.grid)
    return scan.targets(config.tolerance), scan


def deep_compress(
    model: nn.Module,
    data: DataSplits,
    config: DeepCompressionConfig | None = None,
    *,
    out_dir: Path | None = None,
) -> DeepCompressionResult:
    """Prune, quantize and Huffman-code a copy of ``model``, measuring every stage.

    Args:
        model: The trained, uncompressed network (left untouched).
        data: Dataset splits: train for retraining, val for the scan, test for reporting.
        config: Settings (defaults: :class:`DeepCompressionConfig`).
        out_dir: Where ``pruned.apz``, ``quantized.apz`` and ``huffman.apz`` are kept
            (None: a temporary folder, deleted afterwards).

    Example:
        >>> config = DeepCompressionConfig(prune_epochs=2)
        >>> result = deep_compress(model, data, config)  # doctest: +SKIP
        >>> print(f"{result.stages['huffman'].ratio:.0f}x")  # doctest: +SKIP
        41x
    """
    config = config or DeepCompressionConfig()
    config.check()
    layout = cast(Layout, config.layout)  # check() allows only the names of Layout
    specs = discover_layers(model, data.input_shape)
    names = [s.name for s in specs]
    if any(parametrize.is_parametrized(model.get_submodule(n)) for n in names):
        raise AutopruneError("the model already carries masks or quantizers; pass it squashed")
    work = copy.deepcopy(model).eval()
    fp32 = 4 * sum(t.numel() for t in work.state_dict().values())
    dense_weights = 4 * sum(s.weight_count for s in specs)
    stages = {"original": _stage("original", work, data, (fp32, fp32, dense_weights))}
    targets, scan = _choose_targets(work, data, names, config)
    history = gradual_prune(
        work, data, targets, config.schedule,
        epochs=config.prune_epochs, lr=config.prune_lr, seed=config.seed,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(out_dir) if out_dir is not None else Path(scratch)
        pruned = CodedModel(work, export_quantized(work, names))
        report = pruned.write_apz(folder / "pruned.apz", huffman=False, layout=layout)
        stages["pruned"] = _file_stage("pruned", work, data, report)
        bits = {s.name: LayerPolicy(w_bits=_bits(s, config), quantizer="kmeans") for s in specs}
        quantize_weights(work, bits)
        if config.quant_epochs:  # centroids by their members' mean gradient, best epoch kept
            retrain(work, data, config.quant_epochs, lr=config.quant_lr, seed=config.seed)
        coded = CodedModel.freeze(work, names)
        for stage, huffman in (("quantized", False), ("huffman", True)):
            path = folder / f"{stage}.apz"
            report = coded.write_apz(path, huffman=huffman, layout=layout)
            stages[stage] = _file_stage(stage, coded.model, data, report)
    return DeepCompressionResult(
        _policy(specs, coded, targets), coded, stages, targets, history, scan
    )
