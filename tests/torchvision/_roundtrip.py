"""One torchvision model through the real evaluation path: prune, run, export, decode.

Shared by ``tests/torchvision`` and ``benchmarks/torchvision_coverage.py`` (which loads this
file by path). Models have random weights and the data is random images: the checks are
structural (shapes, MACs, files), not accuracy.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autoprune.coding import state_dict_from_apz
from autoprune.compress import CompressionOptions
from autoprune.core.bisection import largest_fitting
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import LayerSpec, discover_layers
from autoprune.cost import load_profile
from autoprune.data import DataSplits
from autoprune.export import export_onnx
from autoprune.latency import build_cost_model
from autoprune.models import build_model
from autoprune.workflow.coded_file import finalize_and_code
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator

SIDE = 64
"""Input height and width of most families (3x64x64)."""
FAMILIES: dict[str, int] = {
    "alexnet": 224,  # ONNX exports its adaptive pool only onto a 6x6 (or larger) map
    "convnext_tiny": SIDE,
    "densenet121": SIDE,
    "efficientnet_b0": SIDE,
    "efficientnet_v2_s": SIDE,
    "googlenet": SIDE,
    "inception_v3": 75,  # its stem needs 75x75
    "maxvit_t": 224,  # every stage's grid must divide into 7x7 windows
    "mnasnet0_5": SIDE,
    "mobilenet_v2": SIDE,
    "mobilenet_v3_small": SIDE,
    "regnet_x_400mf": SIDE,
    "regnet_y_400mf": SIDE,
    "resnet18": SIDE,
    "resnext50_32x4d": SIDE,
    "shufflenet_v2_x0_5": SIDE,
    "squeezenet1_0": SIDE,
    "swin_t": SIDE,
    "swin_v2_t": SIDE,
    "vgg11": 224,  # ONNX exports its adaptive pool only onto a 7x7 (or larger) map
    "vit_b_16": SIDE,
    "wide_resnet50_2": SIDE,
}
"""The smallest variant of every torchvision classification family, and its input side."""
NOT_YET = {
    name: "torch-pruning's group search does not finish on its window-partition reshapes "
    "(channel index lists grow through every reshape); not covered yet"
    for name in ("maxvit_t", "swin_t", "swin_v2_t")
}
"""Families whose channel plan cannot be built in CI time yet, and why."""
COVERED_BY = {
    "alexnet": "alexnet",
    "convnext_": "convnext_tiny",
    "densenet": "densenet121",
    "efficientnet_b": "efficientnet_b0",
    "efficientnet_v2_": "efficientnet_v2_s",
    "googlenet": "googlenet",
    "inception_": "inception_v3",
    "maxvit_": "maxvit_t",
    "mnasnet": "mnasnet0_5",
    "mobilenet_v2": "mobilenet_v2",
    "mobilenet_v3_": "mobilenet_v3_small",
    "regnet_x_": "regnet_x_400mf",
    "regnet_y_": "regnet_y_400mf",
    "resnet": "resnet18",
    "resnext": "resnext50_32x4d",
    "shufflenet_v2_": "shufflenet_v2_x0_5",
    "squeezenet": "squeezenet1_0",
    "swin_v2_": "swin_v2_t",
    "swin_": "swin_t",
    "vgg": "vgg11",
    "vit_": "vit_b_16",
    "wide_resnet": "wide_resnet50_2",
}
"""Name prefix of each family -> the model of :data:`FAMILIES` that stands for it (the
longest matching prefix wins: ``swin_v2_t`` is not ``swin_``)."""


def family_of(model: str) -> str | None:
    """The :data:`FAMILIES` model standing for ``model``'s family, or None."""
    prefixes = sorted((p for p in COVERED_BY if model.startswith(p)), key=len, reverse=True)
    return COVERED_BY[prefixes[0]] if prefixes else None


CLASSES = 10
TARGET = 0.5
"""MACs budget of the uniform policy, a fraction of the original."""
ONNX_TOLERANCE = 1e-3
"""ONNX Runtime vs PyTorch: largest difference, relative to the largest logit magnitude."""


@dataclass
class Outcome:
    """What one model did on the path."""

    model: str
    input_shape: tuple[int, int, int]
    layers: int
    groups: int
    """Prunable dependency groups."""
    macs_ratio: float
    """MACs of the pruned model over the original (Conv2d/Linear layers, measured)."""
    predicted_ratio: float
    """The same ratio as the evaluator's cost model predicted it."""
    onnx_error: float
    """Largest ONNX Runtime vs PyTorch difference over the largest logit magnitude."""
    apz_exact: bool
    seconds: float
    frozen: str | None = None
    """Why nothing can be pruned, or None."""


def random_data(shape: tuple[int, int, int], images: int = 8, seed: int = 0) -> DataSplits:
    """Random normal images with labels cycling through :data:`CLASSES`."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((images, *shape), generator=gen)
    y = torch.arange(images) % CLASSES
    from_tensors = getattr(DataSplits, "from_tensors", None)  # the streaming DataSplits
    if from_tensors is not None:
        return from_tensors("random", x, y, x, y, x, y, CLASSES)  # type: ignore[no-any-return]
    return DataSplits("random", x, y, x, y, x, y, num_classes=CLASSES)  # type: ignore[call-arg]


def evaluator_for(
    name: str, side: int, *, reconstruct: bool = False, round_to: int | None = None
) -> PolicyEvaluator:
    """A :class:`PolicyEvaluator` of ``torchvision:name`` (random weights) on random images.

    ``reconstruct`` (AMC's least-squares refit) is off by default: on the wide layers of
    these models it takes minutes on two CPU cores (it is tested on the zoo models).
    ``round_to`` rounds kept channel counts (the search's ``round_to``).
    """
    shape = (3, side, side)
    torch.manual_seed(0)
    model = build_model(
        f"torchvision:{name}", in_channels=3, num_classes=CLASSES, input_size=(side, side)
    ).eval()
    data = random_data(shape)
    for module in model.modules():  # ViT's head starts at zero: every logit would be 0
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not module.weight.any():
            nn.init.normal_(module.weight, std=0.01)
    settle_batchnorm(model, data.x_train)
    specs = discover_layers(model, shape)
    cost_model = build_cost_model(load_profile("bitfusion"))
    options = CompressionOptions(reconstruct=reconstruct, round_to=round_to)
    config = EvaluatorConfig(
        val_samples=2, calib_batches=1, calib_batch_size=8, compression=options
    )
    return PolicyEvaluator(model, data, specs, cost_model, config)


def settle_batchnorm(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's statistics to those of ``x``'s activations, as training would.

    Freshly initialised torchvision models shrink their activations layer by layer (logits
    near 1e-10); re-estimated on such inputs, BatchNorm divides by variances near 1e-19 and
    float32 rounding dominates the outputs. Settled statistics make the model behave like a
    trained one: activations of unit scale.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batch
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def uniform_policy(evaluator: PolicyEvaluator, target: float = TARGET) -> Policy:
    """The same keep ratio in every layer, the largest whose predicted MACs meet ``target``."""
    specs = evaluator.specs
    base = evaluator.baseline_metrics["macs"]

    def fits(keep: float) -> bool:
        policy = Policy.uniform(specs, keep_ratio=keep)
        return evaluator.costs(policy, ("macs",))["macs"] <= target * base

    return Policy.uniform(specs, keep_ratio=largest_fitting(fits, 0.05, 1.0, steps=12))


def random_joint_policy(specs: list[LayerSpec], seed: int = 0) -> Policy:
    """Random keep ratio, sparsity, weight and activation bits and quantizer per layer."""
    rng = np.random.default_rng(seed)
    layers = {
        s.name: LayerPolicy(
            keep_ratio=float(rng.uniform(0.4, 1.0)) if s.prunable else 1.0,
            w_bits=int(rng.integers(4, 9)),
            a_bits=int(rng.choice([8, 32])),
            sparsity=float(rng.uniform(0.0, 0.6)),
            quantizer="kmeans" if rng.random() < 0.5 else "linear",
        )
        for s in specs
    }
    return Policy.for_specs(specs, layers)


def onnx_error(model: nn.Module, x: torch.Tensor, folder: Path) -> float:
    """Export ``model``, run the file in ONNX Runtime on ``x`` and compare with PyTorch."""
    path = export_onnx(model, x[:1], folder / "model.onnx")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    scale = max(float(np.abs(want).max()), 1e-6)
    return float(np.abs(got - want).max()) / scale


def apz_exact(model: nn.Module, names: list[str], folder: Path) -> bool:
    """Code ``model`` into an ``.apz`` (making it a plain model) and compare the decoded
    state dict with the model's, bit for bit."""
    path = folder / "model.apz"
    finalize_and_code(model, names, path)
    decoded = state_dict_from_apz(path)
    state = model.state_dict()
    return decoded.keys() == state.keys() and all(
        torch.equal(decoded[k], state[k].cpu()) for k in state
    )


def run_family(
    name: str, side: int, policy_kind: str = "uniform", *, reconstruct: bool = False
) -> Outcome:
    """Prune ``torchvision:name`` at ``side`` x ``side`` under a uniform 50% MACs policy (or
    a random joint one), score it, run it, export it to ONNX and code it into an ``.apz``."""
    started = time.perf_counter()
    evaluator = evaluator_for(name, side, reconstruct=reconstruct)
    specs = evaluator.specs
    groups = len(evaluator.plan.prunable)
    policy = uniform_policy(evaluator) if policy_kind == "uniform" else random_joint_policy(specs)
    compressed = evaluator.compress(policy)
    evaluator.accuracy(compressed, copy_model=True)  # the search's scoring: folded, NHWC
    predicted = evaluator.costs(policy, ("macs",))["macs"]
    shape = (3, side, side)
    x = random_data(shape, images=2, seed=1).x_val
    real = sum(s.macs for s in discover_layers(compressed, shape))
    base = sum(s.macs for s in specs)
    with tempfile.TemporaryDirectory() as tmp:
        exact = apz_exact(compressed, [s.name for s in specs], Path(tmp))
        error = onnx_error(compressed, x, Path(tmp))
    frozen = None
    if not groups:
        reasons = {g.frozen for g in evaluator.plan.group_info if g.frozen}
        frozen = "; ".join(sorted(r for r in reasons if r))
    return Outcome(
        model=name,
        input_shape=shape,
        layers=len(specs),
        groups=groups,
        macs_ratio=real / base,
        predicted_ratio=predicted / evaluator.baseline_metrics["macs"],
        onnx_error=error,
        apz_exact=exact,
        seconds=time.perf_counter() - started,
        frozen=frozen,
    )
