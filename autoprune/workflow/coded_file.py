"""Code a compressed model into its ``.apz`` file, within the search's size budget.

The search prices a policy by the predicted bytes of its file on the *searched* weights;
the shipped file codes the *fine-tuned* (or retrained) weights, whose Huffman statistics
differ a little, and the prediction itself has a small error (BENCHMARKS.md, "Size
model"). So a policy that met ``size`` (or ``bits``) in the search can ship a few bytes
over. :func:`code_within` closes that gap: while the coded file misses a limit, it prunes
the smallest kept weights of the masked layers (in proportion to what each keeps) and codes
again; codebooks stay as they are. What was pruned is recorded in the file's metadata under
``"trimmed"`` and returned.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from autoprune.coding import ApzReport, extras_from_state_dict, write_apz
from autoprune.compress import (
    export_quantized,
    independent_copy,
    remove_activation_quant,
    squash,
)
from autoprune.compress.sparsity import compressible_layer, mask_smallest_kept, sparsity_mask

if TYPE_CHECKING:
    from autoprune.deep_compression import CodedModel

MAX_ROUNDS = 40
"""Prune-and-code rounds before giving up (each prunes at least one weight)."""
MARGIN = 1.05
"""Weights pruned per round, relative to the estimated excess."""
LIMITED = ("size", "bits")
"""The limits a coded file is checked against (bytes of the file, Yang's bits)."""


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


def trim_to_fit(
    compressed: nn.Module,
    layer_names: Sequence[str],
    limits: Mapping[str, float],
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Prune ``compressed`` in place until its coded file meets ``limits``.

    Trial files are coded from copies into a temporary folder; the model keeps its
    quantizers, so its accuracy can be measured before :func:`finalize_and_code`.

    Args:
        limits: ``size`` (bytes of the file) and ``bits`` (Yang's count); other keys are
            ignored.
        metadata: What the final file's header will carry (it costs bytes).

    Returns:
        Weights pruned per layer (empty when the model fitted already or no limit applies).
        When pruning every masked layer down to one weight does not fit, the smallest model
        reached is kept; the caller compares the final file with the limit.
    """
    limits = {m: float(v) for m, v in limits.items() if m in LIMITED}
    trimmed: dict[str, int] = {}
    if not limits:
        return trimmed
    with tempfile.TemporaryDirectory(prefix="autoprune-fit-") as folder:
        trial = Path(folder) / "trial.apz"
        for _ in range(MAX_ROUNDS):
            report = finalize_and_code(
                independent_copy(compressed),
                list(layer_names),
                trial,
                with_trimmed(metadata, trimmed),
            )
            count = _excess_weights(report, limits, _kept(compressed, layer_names))
            if count == 0 or not _trim(compressed, layer_names, count, trimmed):
                break
    return trimmed


def code_within(
    compressed: nn.Module,
    layer_names: Sequence[str],
    path: Path,
    metadata: Mapping[str, Any],
    limits: Mapping[str, float],
) -> tuple[ApzReport, dict[str, int]]:
    """:func:`trim_to_fit`, then :func:`finalize_and_code` into ``path``.

    Returns:
        The file's report and the weights pruned per layer.
    """
    trimmed = trim_to_fit(compressed, layer_names, limits, metadata)
    report = finalize_and_code(compressed, list(layer_names), path, with_trimmed(metadata, trimmed))
    return report, trimmed


def write_coded_within(
    coded: CodedModel,
    path: Path,
    metadata: Mapping[str, Any],
    limits: Mapping[str, float],
) -> tuple[ApzReport, dict[str, int]]:
    """Write a retrained, already coded model to ``path`` within ``limits``.

    The one-shot methods (Deep Compression, ADMM) retrain and code their own model; their
    budget was met on predictions, so the file can miss it by a little, as the search's can.
    While it misses a limit, the smallest kept codes of every layer (in proportion to what
    each keeps) are pruned in the coded weights *and* zeroed in ``coded.model``, so the two
    stay equal, and the file is written again.

    Returns:
        The final file's report and the weights pruned per layer.
    """
    limits = {m: float(v) for m, v in limits.items() if m in LIMITED}
    trimmed: dict[str, int] = {}
    report = coded.write_apz(path, metadata=with_trimmed(metadata, trimmed))
    for _ in range(MAX_ROUNDS if limits else 0):
        kept = {name: q.nonzeros for name, q in coded.weights.items()}
        count = _excess_weights(report, limits, kept)
        if count == 0 or not _trim_coded(coded, count, trimmed):
            break
        report = coded.write_apz(path, metadata=with_trimmed(metadata, trimmed))
    return report, trimmed


def _trim_coded(coded: CodedModel, count: int, trimmed: dict[str, int]) -> bool:
    """Prune ``count`` coded weights over the layers in proportion to what each keeps."""
    total = sum(q.nonzeros for q in coded.weights.values())
    modules = dict(coded.model.named_modules())
    pruned = 0
    for name, weight in list(coded.weights.items()):
        share = min(math.ceil(count * weight.nonzeros / total), weight.nonzeros - 1)
        if share <= 0 or weight.scheme == "float":
            continue
        values = weight.dequantize().reshape(-1)
        mask = np.ones(weight.size, bool) if weight.mask is None else weight.mask.copy()
        scores = np.where(mask, np.abs(values), np.inf)
        order = np.argsort(scores, kind="stable")[:share]
        mask[order] = False
        coded.weights[name] = dataclasses.replace(weight, mask=mask)
        layer_weight = modules[name].weight
        with torch.no_grad():
            layer_weight[torch.unravel_index(torch.from_numpy(order), layer_weight.shape)] = 0.0
        trimmed[name] = trimmed.get(name, 0) + share
        pruned += share
    return pruned > 0


def with_trimmed(metadata: Mapping[str, Any] | None, trimmed: Mapping[str, int]) -> dict:
    """``metadata`` with the pruned counts under ``"trimmed"`` (unchanged when none)."""
    metadata = dict(metadata or {})
    return {**metadata, "trimmed": dict(trimmed)} if trimmed else metadata


def _kept(model: nn.Module, names: Sequence[str]) -> dict[str, int]:
    """Kept weights of every masked layer."""
    kept = {}
    for name in names:
        mask = sparsity_mask(compressible_layer(model, name))
        if mask is not None:
            kept[name] = int(mask.sum())
    return kept


def _excess_weights(report: ApzReport, limits: Mapping[str, float], kept: dict[str, int]) -> int:
    """Weights to prune so that the file meets every limit (0 when it does)."""
    total = sum(kept.values())
    if total == 0:
        return 0
    needed = 0.0
    if "size" in limits and report.file_bytes > limits["size"]:
        payload = report.file_bytes - report.extra_bytes - report.overhead_bytes
        needed = (report.file_bytes - limits["size"]) / max(payload / total, 1e-9)
    bits = 8 * report.yang_bytes
    if "bits" in limits and bits > limits["bits"]:
        needed = max(needed, (bits - limits["bits"]) / max(bits / total, 1e-9))
    return math.ceil(MARGIN * needed) if needed > 0 else 0


def _trim(model: nn.Module, names: Sequence[str], count: int, trimmed: dict[str, int]) -> bool:
    """Prune ``count`` weights over the masked layers in proportion to what each keeps."""
    kept = _kept(model, names)
    total = sum(kept.values())
    pruned = 0
    for name, layer_kept in kept.items():
        share = math.ceil(count * layer_kept / total)
        done = mask_smallest_kept(compressible_layer(model, name), share)
        if done:
            trimmed[name] = trimmed.get(name, 0) + done
            pruned += done
    return pruned > 0
