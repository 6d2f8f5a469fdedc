"""Every torchvision classification family through the evaluation path, export and coding.

Random weights, random images, one small input per family (``_roundtrip.FAMILIES``). Each
model is pruned by a uniform keep ratio to half its MACs (a few also by a random joint
policy: channels, sparsity, weight and activation bits), scored as the search scores it,
exported to ONNX and checked in ONNX Runtime against PyTorch, and coded into an ``.apz``
that must decode to the model's exact tensors.
"""

from __future__ import annotations

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.models import build_model
from tests.torchvision._roundtrip import (
    FAMILIES,
    NOT_YET,
    ONNX_TOLERANCE,
    TARGET,
    family_of,
    run_family,
)

pytestmark = pytest.mark.torchvision

UNPRUNABLE: dict[str, str] = {}
"""Families with no prunable group, and why (the search still quantizes them)."""
UNSUPPORTED = {"shufflenet_v2_x0_5": "torch-pruning cannot map the channels"}
"""Families torch-pruning cannot trace (Torch-Pruning issue #14): a one-line usage error."""
JOINT = ("resnet18", "mobilenet_v3_small", "densenet121", "vit_b_16")
"""Families that also take a random joint policy (residual, depthwise + SE, concat, MLP)."""


def test_every_classification_family_is_covered():
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    assert {family_of(name) for name in names} == set(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_prunes_to_half_the_macs_and_exports(name):
    if name in NOT_YET:
        pytest.skip(f"{name}: {NOT_YET[name]}")
    if name in UNSUPPORTED:
        with pytest.raises(AutopruneError, match=UNSUPPORTED[name]):
            run_family(name, FAMILIES[name])
        return
    outcome = run_family(name, FAMILIES[name])
    assert outcome.apz_exact, "the .apz does not decode to the model's tensors"
    assert outcome.onnx_error <= ONNX_TOLERANCE
    # the plan's prediction is what the pruned model really costs
    assert outcome.macs_ratio == pytest.approx(outcome.predicted_ratio, rel=1e-9)
    if name in UNPRUNABLE:
        assert outcome.groups == 0 and outcome.macs_ratio == 1.0
        assert UNPRUNABLE[name] in (outcome.frozen or "")
        return
    assert outcome.groups > 0
    assert TARGET - 0.1 < outcome.macs_ratio <= TARGET


@pytest.mark.parametrize("name", JOINT)
def test_random_joint_policy_runs_exports_and_decodes(name):
    outcome = run_family(name, FAMILIES[name], policy_kind="joint")
    assert outcome.apz_exact
    assert outcome.onnx_error <= ONNX_TOLERANCE
    assert outcome.macs_ratio == pytest.approx(outcome.predicted_ratio, rel=1e-9)
    assert outcome.macs_ratio < 1.0


def test_reconstruction_on_a_torchvision_model():
    outcome = run_family("mobilenet_v3_small", FAMILIES["mobilenet_v3_small"], reconstruct=True)
    assert outcome.apz_exact and outcome.onnx_error <= ONNX_TOLERANCE
    assert outcome.macs_ratio <= TARGET


def test_vit_needs_a_square_input():
    with pytest.raises(AutopruneError, match="square"):
        build_model("torchvision:vit_b_16", in_channels=3, input_size=(64, 32))


def test_vit_is_built_for_the_input_size():
    vit = build_model("torchvision:vit_b_16", in_channels=3, input_size=(32, 32))
    assert vit.image_size == 32


def test_cost_prices_resnet18_at_224_without_a_dataset(capsys, tmp_path):
    import json

    from autoprune.cli import main

    args = ["--model", "torchvision:resnet18", "--input-shape", "3,224,224", "--json"]
    assert main(["cost", *args, "--runs-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "no dataset" and report["input_shape"] == [3, 224, 224]
    assert report["totals"]["macs"] == 1_814_073_344  # torchvision's 1.81 GFLOPS
    assert report["layers"][-1]["params"] == 513_000  # the 1000-class head
    assert main(["layers", *args]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["in_hw"] == [224, 224] and rows[-1]["out_channels"] == 1000
