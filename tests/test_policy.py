"""Policy files: round-trip, validation against the architecture, bad fields."""

from __future__ import annotations

import json

import pytest
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy, architecture_fingerprint
from autoprune.core.specs import discover_layers


def _specs(width: int = 8) -> list:
    model = nn.Sequential(
        nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 36, 10)
    )
    return discover_layers(model, (1, 8, 8))


def test_round_trip_preserves_every_field(tmp_path):
    specs = _specs()
    policy = Policy.for_specs(
        specs,
        {"0": LayerPolicy(keep_ratio=0.5, w_bits=4, a_bits=6, sparsity=0.3, quantizer="kmeans")},
    )
    policy.budget = {"flops": 0.5}
    policy.metrics = {"accuracy": 0.91}
    path = policy.save(tmp_path / "p" / "policy.json")
    loaded = Policy.load(path, specs)
    assert loaded.layers == policy.layers
    assert loaded.budget == {"flops": 0.5}
    assert loaded.metrics == {"accuracy": 0.91}
    assert loaded.fingerprint == architecture_fingerprint(specs)
    assert not list(path.parent.glob(".policy-*")), "temporary file left behind"


def test_fingerprint_changes_with_shape_but_not_with_weights():
    assert architecture_fingerprint(_specs(8)) == architecture_fingerprint(_specs(8))
    assert architecture_fingerprint(_specs(8)) != architecture_fingerprint(_specs(16))


def test_policy_for_other_architecture_names_differing_layers(tmp_path):
    other = discover_layers(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (1, 8, 8))
    path = Policy.identity(_specs()).save(tmp_path / "policy.json")
    with pytest.raises(
        AutopruneError, match=r"another architecture.*only in the policy: \['0', '3'\]"
    ):
        Policy.load(path, other)


def test_same_names_different_shapes_is_refused(tmp_path):
    path = Policy.identity(_specs(8)).save(tmp_path / "policy.json")
    with pytest.raises(AutopruneError, match="different shapes"):
        Policy.load(path, _specs(16))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"keep_ratio": 0.0}, "keep_ratio"),
        ({"keep_ratio": 1.5}, "keep_ratio"),
        ({"w_bits": 9}, "w_bits"),
        ({"a_bits": 1}, "a_bits"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"quantizer": "lloyd"}, "quantizer"),
    ],
)
def test_out_of_range_fields_are_refused(fields, message):
    with pytest.raises(AutopruneError, match=message):
        Policy.for_specs(_specs(), {"0": LayerPolicy(**fields)})


def test_classifier_outputs_cannot_be_pruned():
    with pytest.raises(AutopruneError, match="classifier"):
        Policy.for_specs(_specs(), {"3": LayerPolicy(keep_ratio=0.5)})


def test_uniform_leaves_classifier_whole():
    policy = Policy.uniform(_specs(), keep_ratio=0.25, w_bits=4)
    assert policy.layers["0"].keep_ratio == 0.25
    assert policy.layers["3"].keep_ratio == 1.0
    assert {layer.w_bits for layer in policy.layers.values()} == {4}


def test_malformed_and_missing_files(tmp_path):
    with pytest.raises(AutopruneError, match="does not exist"):
        Policy.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AutopruneError, match="not valid JSON"):
        Policy.load(bad)
    bad.write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(AutopruneError, match="schema_version"):
        Policy.load(bad)
    bad.write_text(json.dumps({"schema_version": 1, "layers": {"0": {"bits": 3}}}))
    with pytest.raises(AutopruneError, match="malformed"):
        Policy.load(bad)
