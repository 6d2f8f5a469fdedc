"""``code_within`` / ``trim_to_fit``: the coded file meets the size budget it is given."""

from __future__ import annotations

import torch

from autoprune.coding import inspect_apz, read_apz, state_dict_from_apz
from autoprune.compress import apply_weight_compression, independent_copy
from autoprune.core.policy import LayerPolicy
from autoprune.core.specs import discover_layers
from autoprune.deep_compression import CodedModel
from autoprune.workflow.baseline import build_for
from autoprune.workflow.coded_file import (
    code_within,
    finalize_and_code,
    trim_to_fit,
    write_coded_within,
)


def _sparse_kmeans(digits) -> tuple[torch.nn.Module, list[str]]:
    model = build_for("demo", digits).eval()
    names = [s.name for s in discover_layers(model, digits.input_shape)]
    layers = {n: LayerPolicy(w_bits=4, sparsity=0.8, quantizer="kmeans") for n in names}
    apply_weight_compression(model, layers)
    return model, names


def test_a_file_over_the_limit_is_pruned_until_it_fits(digits, tmp_path):
    model, names = _sparse_kmeans(digits)
    untouched = finalize_and_code(independent_copy(model), names, tmp_path / "as-is.apz")
    limit = {"size": 0.9 * untouched.file_bytes}
    report, trimmed = code_within(model, names, tmp_path / "fit.apz", {}, limit)
    assert report.file_bytes <= limit["size"] < untouched.file_bytes
    assert report.file_bytes == inspect_apz(tmp_path / "fit.apz").file_bytes
    assert sum(trimmed.values()) > 0 and set(trimmed) <= set(names)
    # the file is the model: it decodes to the (squashed) weights, and records the pruning
    decoded = state_dict_from_apz(tmp_path / "fit.apz")
    for key, value in model.state_dict().items():
        assert torch.equal(decoded[key], value), key
    assert read_apz(tmp_path / "fit.apz")[2]["trimmed"] == trimmed


def test_a_bits_limit_is_met_and_a_fitting_file_is_left_alone(digits, tmp_path):
    model, names = _sparse_kmeans(digits)
    before = finalize_and_code(independent_copy(model), names, tmp_path / "as-is.apz")
    bits = 8 * before.yang_bytes
    assert trim_to_fit(model, names, {"size": before.file_bytes, "bits": bits}) == {}
    trimmed = trim_to_fit(model, names, {"bits": 0.8 * bits})
    after = finalize_and_code(model, names, tmp_path / "fit.apz")
    assert 8 * after.yang_bytes <= 0.8 * bits
    assert sum(trimmed.values()) >= 0.2 * bits / 4 - len(names)  # 4-bit codes


def test_a_retrained_coded_model_is_written_within_the_limit(digits, tmp_path):
    model, names = _sparse_kmeans(digits)
    coded = CodedModel.freeze(model, names)
    as_is = coded.write_apz(tmp_path / "as-is.apz")
    limit = {"size": 0.85 * as_is.file_bytes, "accuracy": 0.5}  # accuracy: not a file limit
    report, trimmed = write_coded_within(coded, tmp_path / "fit.apz", {"m": 1}, limit)
    assert report.file_bytes == inspect_apz(tmp_path / "fit.apz").file_bytes <= limit["size"]
    assert sum(trimmed.values()) > 0 and set(trimmed) <= set(names)
    # the model was pruned with the file: it decodes to the model's weights exactly
    decoded = state_dict_from_apz(tmp_path / "fit.apz")
    for key, value in coded.model.state_dict().items():
        assert torch.equal(decoded[key], value), key
    assert read_apz(tmp_path / "fit.apz")[2] == {"m": 1, "trimmed": trimmed}
    # a file that fits is written once, untouched
    again, none = write_coded_within(coded, tmp_path / "again.apz", {}, {"size": 1e9})
    assert none == {} and again.file_bytes <= report.file_bytes
