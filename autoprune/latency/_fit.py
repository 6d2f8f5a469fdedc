"""Fit the measured latency model to one network: its epilogues and its layer-sum line.

A measured cost model times single layers. Two things about the network make those timings
add up to its real latency: the operators that follow each layer (found once from the
exported graph, see :mod:`autoprune.latency._epilogues`), and a line from summed layer times to
whole-model latency, fitted on the network and a few randomly pruned versions of it measured
whole (see :mod:`autoprune.latency._layer_sum_line`). Both are cached with the lookup table, so a
search measures the whole network only the first time it meets it on a machine.
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from autoprune.compress import ChannelPlan, prune_channels, pruned_specs
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy, architecture_fingerprint
from autoprune.core.specs import LayerSpec
from autoprune.cost import CostModel
from autoprune.export import export_onnx
from autoprune.latency._epilogues import model_epilogues
from autoprune.latency._kernels import measure_together
from autoprune.latency._layer_graphs import layer_onnx
from autoprune.latency._layer_sum_line import fit_layer_sum_line
from autoprune.latency._lut import MAX_ATTEMPTS, RETRY_PAUSE_S, probe_key, window_args
from autoprune.latency._measured import MeasuredCostModel

LINE_VERSIONS = 7
"""Randomly pruned versions measured whole, beside the unpruned network, to fit the line."""

CALIBRATION_SEED = 20261127
"""Seed of those versions (validation draws its policies with other seeds)."""

WHOLE_MODEL_ROUNDS = 10
"""At least this many interleaved rounds when whole models are timed (few, slow graphs)."""

WHOLE_MODEL_WINDOWS = 2
"""Windows whole models are timed in; each model keeps its fastest. A busy stretch of the
machine slows small models more than large ones (we saw +57% against +14%), which tilts a
layer-sum line fitted on one window; a second window seconds later rarely shares it."""


def random_prune_policies(
    specs: Sequence[LayerSpec],
    plan: ChannelPlan,
    samples: int,
    *,
    min_keep: float = 0.2,
    seed: int = 0,
) -> list[Policy]:
    """``samples`` policies with one random keep ratio per prunable group.

    The mean ratio of each policy is drawn first (so the set spans small to large models),
    then every group's ratio is drawn around it.
    """
    rng = np.random.default_rng(seed)
    prunable = set(plan.prunable)
    policies = []
    for _ in range(samples):
        centre = rng.uniform(min_keep, 1.0)
        layers = {}
        for spec in specs:
            if spec.name in prunable:
                ratio = float(np.clip(centre + rng.normal(0, 0.15), min_keep, 1.0))
                layers[spec.name] = LayerPolicy(keep_ratio=ratio)
        policies.append(Policy.for_specs(list(specs), layers))
    return policies


def model_id(specs: Sequence[LayerSpec], cost_model: MeasuredCostModel) -> str:
    """Key of a network's layer-sum line: its layers and the operators after them."""
    signatures = [
        cost_model.epilogues[s.name].signature for s in specs if s.name in cost_model.epilogues
    ]
    digest = hashlib.sha256((architecture_fingerprint(specs) + "|" + ",".join(signatures)).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class WholeModelTimes:
    """Whole-model latencies measured in one window, and the machine's speed meanwhile.

    Attributes:
        measured_ms: Wall-clock ms per model, as measured.
        speed: The fastest probe the lookup table has seen over the probe's time in the last
            window (1.0: as fast as the idle machine; 0.9: 10% slower).
        attempts: Windows measured.
    """

    measured_ms: list[float]
    speed: float
    attempts: int = 1


def measure_whole_models(
    models: Sequence[nn.Module], example_input: torch.Tensor, cost_model: MeasuredCostModel
) -> WholeModelTimes:
    """Export ``models`` and time them in one window with the profile's settings.

    Whole models are few and slow, so a window has at least :data:`WHOLE_MODEL_ROUNDS`
    rounds and lasts the profile's ``model_seconds``. :data:`WHOLE_MODEL_WINDOWS` windows are
    measured, a pause apart, and each model keeps its fastest; the table's probe layer is
    timed beside them, and while it shows a busy machine one more window is measured
    (:data:`~autoprune.latency._lut.MAX_ATTEMPTS` in all).
    """
    table = cost_model.table
    settings = table.settings
    window = window_args(settings, table.batch_size)
    window["rounds"] = max(settings.rounds, WHOLE_MODEL_ROUNDS)
    window["min_seconds"] = max(settings.min_seconds, settings.model_seconds)
    with tempfile.TemporaryDirectory(prefix="autoprune-whole-") as tmp:
        paths = [
            export_onnx(m, example_input[:1], Path(tmp) / f"m{i}.onnx")
            for i, m in enumerate(models)
        ]
        probe = layer_onnx(probe_key(table.batch_size))
        fastest: list[float] | None = None
        probes: list[float] = []
        while len(probes) < MAX_ATTEMPTS:
            if probes:
                time.sleep(RETRY_PAUSE_S)
            kernels, walls = measure_together([probe], paths, **window)
            probes.append(kernels[0].kernel_ms)
            fastest = (
                walls
                if fastest is None
                else [min(a, b) for a, b in zip(fastest, walls, strict=True)]
            )
            if len(probes) >= WHOLE_MODEL_WINDOWS and not table.is_slow(probes[-1]):
                break
    assert fastest is not None
    table.note_probe(min(probes))
    speed = (table.reference_ms or probes[-1]) / max(probes[-1], 1e-12)
    return WholeModelTimes(fastest, speed, len(probes))


def fit_latency_model(
    cost_model: CostModel,
    model: nn.Module,
    example_input: torch.Tensor,
    specs: Sequence[LayerSpec],
) -> CostModel:
    """Give a measured cost model ``model``'s epilogues and layer-sum line (cached); others pass.

    ``specs`` are the unpruned layers of ``model``. A network that cannot be exported to
    ONNX keeps single-layer timings plus the per-call overhead, with a warning.
    """
    if not isinstance(cost_model, MeasuredCostModel):
        return cost_model
    if cost_model.table.settings.runtime != "onnxruntime":
        return cost_model
    try:
        cost_model.epilogues = model_epilogues(model, example_input, specs)
    except AutopruneError as exc:
        warnings.warn(f"latency is not calibrated to the model: {exc}", stacklevel=2)
        return cost_model
    key = model_id(specs, cost_model)
    stored = cost_model.table.line(key)
    if stored is None:
        plan = ChannelPlan.build(model, example_input[:1])
        shaped, versions = [list(specs)], [model]
        count = LINE_VERSIONS if plan.prunable else 0
        for policy in random_prune_policies(specs, plan, count, seed=CALIBRATION_SEED):
            keep = policy.keep_ratios()
            pruned = copy.deepcopy(model).eval()
            versions.append(prune_channels(pruned, example_input[:1], keep))
            shaped.append(pruned_specs(specs, plan, keep))
        keys = [k for s in shaped for k in cost_model.keys(s, {}).values()]
        cost_model.table.ensure(keys)  # the layers of every version in one window
        summed = [cost_model.summed_ms(s, {}) for s in shaped]
        measured = measure_whole_models(versions, example_input, cost_model)
        stored = fit_layer_sum_line(summed, measured.measured_ms)
        cost_model.table.set_line(key, stored)
    cost_model.line = stored
    return cost_model


__all__ = [
    "CALIBRATION_SEED",
    "LINE_VERSIONS",
    "WholeModelTimes",
    "fit_latency_model",
    "measure_whole_models",
    "model_id",
    "random_prune_policies",
]
