from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from autoprune.compress.channel_plan import ChannelPlan
from autoprune.compress.importance import make_importance
from autoprune.compress.pruning import ChannelPruner, prune_channels, prune_channels_report
from autoprune.core.errors import AutopruneError
from autoprune.core.specs import discover_layers

# Per model: (layer, its BatchNorm, channels silenced by gamma = beta = 0) and the keep ratios
# that remove exactly those channels. Coupled layers are silenced together; grouped layers at
# the same position in every conv group.
SILENCED = {
    "chain": (
        [("conv1", "bn1", [2]), ("conv2", "bn2", [0, 3, 5, 9])],
        {"conv1": 7 / 8, "conv2": 0.75},
    ),
    "residual": (
        [
            ("stem.0", "stem.1", [1, 6]),
            ("a2.0", "a2.1", [1, 6]),
            ("shortcut.0", "shortcut.1", [0, 1, 2, 3]),
            ("b2.0", "b2.1", [0, 1, 2, 3]),
        ],
        {"stem.0": 0.75, "shortcut.0": 0.75},
    ),
    "inverted_residual": (
        [
            ("expand.0", "expand.1", [0, 5, 7, 20]),
            ("dw.0", "dw.1", [0, 5, 7, 20]),
            ("stem.0", "stem.1", [3]),
            ("project.0", "project.1", [3]),
        ],
        {"expand.0": 20 / 24, "stem.0": 7 / 8},
    ),
    "concat": (
        [("left.0", "left.1", [1, 4]), ("right.0", "right.1", [0, 9])],
        {"left.0": 4 / 6, "right.0": 0.8},
    ),
    "grouped": (
        [("conv1.0", "conv1.1", [1, 5]), ("group2.0", "group2.1", [0, 4, 8, 12])],
        {"conv1.0": 0.75, "group2.0": 0.75},
    ),
}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _macs(model: nn.Module) -> int:
    return sum(s.macs for s in discover_layers(model, (1, 8, 8)))


def _silence(model: nn.Module, silenced: list[tuple[str, str, list[int]]]) -> None:
    with torch.no_grad():
        for _, name, channels in silenced:
            norm = model.get_submodule(name)
            norm.weight[channels] = 0.0
            norm.bias[channels] = 0.0


@pytest.mark.parametrize("name", list(SILENCED))
def test_removing_silent_channels_keeps_outputs_identical(make_tiny_model, example_input, name):
    silenced, keep = SILENCED[name]
    model = make_tiny_model(name)
    _silence(model, silenced)
    expected = model(example_input)
    pruned = copy.deepcopy(model)
    report = prune_channels_report(pruned, example_input, keep, importance="bn_scale")
    assert _params(pruned) < _params(model)
    assert torch.allclose(pruned(example_input), expected, rtol=1e-5, atol=1e-5)
    for layer, _, channels in silenced:
        kept = report.kept_out[layer]
        assert not set(channels) & set(kept)
        assert len(kept) + len(channels) == model.get_submodule(layer).out_channels


def test_pruning_is_in_place_and_removes_real_channels(make_tiny_model, example_input):
    model = make_tiny_model("chain")
    result = prune_channels(model, example_input, {"conv1": 0.5, "conv2": 0.5})
    assert result is model
    assert model.conv1.weight.shape == (4, 1, 3, 3)
    assert model.bn1.running_mean.shape == (4,)
    assert model.conv2.weight.shape == (8, 4, 3, 3)
    assert model.bn2.weight.shape == (8,)
    assert model.conv3.weight.shape == (16, 8, 3, 3)


def test_uniform_half_pruning_shrinks_params_and_macs(tiny_model):
    name, model, x = tiny_model
    plan = ChannelPlan.build(model, x)
    keep = {layer: 0.5 for layer in plan.prunable}
    pruned = prune_channels(copy.deepcopy(model), x, keep)
    assert pruned(x).shape == (2, 10)
    # layers between two pruned groups shrink ~4x, the first/last ~2x
    assert 0.15 < _params(pruned) / _params(model) < 0.65, name
    assert 0.15 < _macs(pruned) / _macs(model) < 0.65, name


def test_never_fewer_than_one_channel(make_tiny_model, example_input):
    model = make_tiny_model("chain")
    prune_channels(model, example_input, {"conv1": 0.01, "conv2": 0.01, "conv3": 0.01})
    assert model.conv1.out_channels == model.conv2.out_channels == model.conv3.out_channels == 1
    assert model.fc1.in_features == 4
    assert model(example_input).shape == (2, 10)


def test_round_to_makes_multiples(make_tiny_model, example_input):
    model = make_tiny_model("chain")
    prune_channels(model, example_input, {"conv2": 0.3, "conv3": 0.6, "fc1": 0.7}, round_to=4)
    assert (model.conv2.out_channels, model.conv3.out_channels, model.fc1.out_features) == (
        4,
        8,
        16,
    )


def test_training_mode_is_preserved(make_tiny_model, example_input):
    model = make_tiny_model("residual").train()
    prune_channels(model, example_input, {"stem.0": 0.5})
    assert all(m.training for m in model.modules())


def test_importance_object_and_data_criteria(make_tiny_model, example_input):
    batches = [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))) for _ in range(2)]
    for criterion in ("taylor", "activation", "apoz", make_importance("fpgm")):
        model = make_tiny_model("inverted_residual")
        prune_channels(
            model, example_input, {"expand.0": 0.5}, importance=criterion, calib_batches=batches
        )
        assert model.dw[0].out_channels == 12
        assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("keep", "kwargs", "fragment"),
    [
        ({"conv9": 0.5}, {}, "conv9"),
        ({"conv1": 0.0}, {}, "conv1"),
        ({"conv2": 1.01}, {}, "conv2"),
        ({"fc2": 0.5}, {}, "classifier"),
        ({"conv1": 0.5}, {"importance": "taylor"}, "calib_batches"),
        ({"conv1": 0.5}, {"importance": "magic"}, "magic"),
    ],
)
def test_bad_requests_raise_and_leave_the_model_alone(
    make_tiny_model, example_input, keep, kwargs, fragment
):
    model = make_tiny_model("chain")
    with pytest.raises(AutopruneError, match=fragment):
        prune_channels(model, example_input, keep, **kwargs)
    assert model.conv1.out_channels == 8 and model.conv2.out_channels == 16


def test_report_lists_layers_whose_inputs_shrank(make_tiny_model, example_input):
    model = make_tiny_model("concat")
    report = prune_channels_report(model, example_input, {"left.0": 0.5})
    assert report.input_pruned == ("fuse.0",)
    assert set(report.kept_out) == {"left.0"} and len(report.kept_out["left.0"]) == 3
    assert report.shapes["fuse.0"] == (13, 12)


def test_one_pruner_prunes_copies_like_a_fresh_trace(tiny_model):
    """Tracing once and pruning many copies gives what tracing each copy gives."""
    _, model, example = tiny_model
    reference = [p.clone() for p in model.parameters()]
    pruner = ChannelPruner(model, example, importance="l2")
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        keep = {
            n: float(torch.rand(1, generator=generator)) * 0.8 + 0.1 for n in pruner.plan.prunable
        }
        shared = copy.deepcopy(model)
        report = pruner.prune(shared, keep)
        fresh = copy.deepcopy(model)
        expected = prune_channels_report(fresh, example, keep, importance="l2")
        assert report.shapes == expected.shapes and report.kept_out == expected.kept_out
        for (name, a), b in zip(
            shared.state_dict().items(), fresh.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
        assert torch.allclose(shared(example), fresh(example))
    assert all(torch.equal(a, b) for a, b in zip(reference, model.parameters(), strict=True))


def test_a_pruner_refuses_a_second_use_after_pruning_its_own_model(make_tiny_model, example_input):
    model = make_tiny_model("chain")
    pruner = ChannelPruner(model, example_input)
    pruner.prune(model, {"conv2": 0.5})
    with pytest.raises(AutopruneError, match="already pruned"):
        pruner.prune(model, {"conv2": 0.5})
