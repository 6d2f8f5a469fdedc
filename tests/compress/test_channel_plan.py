from __future__ import annotations

import copy
import math
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from autoprune.compress.channel_plan import ChannelPlan, kept_count, pruned_specs
from autoprune.compress.pruning import prune_channels
from autoprune.core.errors import AutopruneError
from autoprune.core.specs import discover_layers
from autoprune.models import build_model, model_names


def _real_shapes(model: nn.Module, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    shapes = {}
    for name in names:
        m = model.get_submodule(name)
        shapes[name] = (
            (m.in_channels, m.out_channels)
            if isinstance(m, nn.Conv2d)
            else (m.in_features, m.out_features)
        )
    return shapes


def _random_keep(plan: ChannelPlan, rng: random.Random) -> dict[str, float]:
    return {name: rng.uniform(0.05, 1.0) for name in plan.layers if name != plan.classifier}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_predicted_shapes_equal_real_shapes_after_pruning(tiny_model, seed):
    _, model, x = tiny_model
    plan = ChannelPlan.build(model, x)
    rng = random.Random(seed)
    keep = _random_keep(plan, rng)
    round_to = [None, 2, 4][seed]
    predicted = plan.pruned_shapes(keep, round_to=round_to)
    pruned = prune_channels(copy.deepcopy(model), x, keep, round_to=round_to)
    assert _real_shapes(pruned, plan.layers) == predicted
    assert pruned(x).shape == (2, 10)
    assert predicted != plan.shapes  # something was pruned


@pytest.mark.parametrize("name", model_names())
def test_zoo_models_prune_exactly_as_planned(name):
    model = build_model(name).eval()
    x = torch.randn(1, 1, 28, 28)
    plan = ChannelPlan.build(model, x)
    keep = _random_keep(plan, random.Random(name))
    predicted = plan.pruned_shapes(keep, round_to=4)
    pruned = prune_channels(copy.deepcopy(model), x, keep, round_to=4)
    assert _real_shapes(pruned, plan.layers) == predicted
    assert pruned(x).shape == (1, 10)
    assert set(plan.prunable) <= set(plan.layers) - {plan.classifier}


def test_pruned_shapes_does_not_touch_the_model(make_tiny_model, example_input):
    model = make_tiny_model("chain")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = ChannelPlan.build(model, example_input)
    plan.pruned_shapes({"conv1": 0.5, "conv2": 0.25})
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_residual_group_is_controlled_by_its_first_layer(make_tiny_model, example_input):
    plan = ChannelPlan.build(make_tiny_model("residual"), example_input)
    assert ["stem.0", "a2.0"] in plan.groups
    assert ["shortcut.0", "b2.0"] in plan.groups
    assert plan.controller("a2.0") == "stem.0"
    assert plan.controller("b2.0") == "shortcut.0"
    assert plan.controller("fc") is None
    assert plan.prunable == ("stem.0", "a1.0", "shortcut.0", "b1.0")
    # a non-controller's ratio is ignored; the controller's ratio moves every member
    assert plan.pruned_shapes({"a2.0": 0.5}) == plan.shapes
    shapes = plan.pruned_shapes({"stem.0": 0.5})
    assert shapes["stem.0"] == (1, 4) and shapes["a2.0"] == (8, 4)
    assert (
        shapes["a1.0"] == (4, 8) and shapes["b1.0"] == (4, 16) and shapes["shortcut.0"] == (4, 16)
    )


def test_depthwise_follows_its_producer(make_tiny_model, example_input):
    plan = ChannelPlan.build(make_tiny_model("inverted_residual"), example_input)
    assert plan.controller("dw.0") == "expand.0"
    assert "dw.0" not in plan.prunable
    shapes = plan.pruned_shapes({"expand.0": 0.5, "dw.0": 0.1})
    assert shapes["expand.0"] == (8, 12)
    assert shapes["dw.0"] == (12, 12)
    assert shapes["project.0"] == (12, 8)


def test_concat_consumer_sums_the_kept_branch_channels(make_tiny_model, example_input):
    plan = ChannelPlan.build(make_tiny_model("concat"), example_input)
    shapes = plan.pruned_shapes({"left.0": 0.5, "right.0": 0.3})
    assert shapes["left.0"][1] == 3 and shapes["right.0"][1] == 3
    assert shapes["fuse.0"] == (6, 12)


def test_grouped_convs_keep_multiples_of_their_groups(make_tiny_model, example_input):
    plan = ChannelPlan.build(make_tiny_model("grouped"), example_input)
    by_controller = {g.controller: g.channel_groups for g in plan.group_info}
    assert by_controller["conv1.0"] == 2  # feeds a groups=2 conv
    assert by_controller["group2.0"] == 4  # groups=2 itself, feeds a groups=4 conv
    for ratio in (0.1, 0.3, 0.55, 0.9):
        shapes = plan.pruned_shapes({"conv1.0": ratio, "group2.0": ratio, "group4.0": ratio})
        assert shapes["conv1.0"][1] % 2 == 0
        assert shapes["group2.0"][1] % 4 == 0 and shapes["group4.0"][1] % 4 == 0


def test_flatten_linear_input_counts_spatial_positions(make_tiny_model, example_input):
    plan = ChannelPlan.build(make_tiny_model("chain"), example_input)
    assert plan.pruned_shapes({"conv3": 0.5})["fc1"] == (8 * 2 * 2, 24)


def test_round_to_gives_multiples_and_keeps_small_layers(make_tiny_model, example_input):
    plan = ChannelPlan.build(make_tiny_model("chain"), example_input)
    shapes = plan.pruned_shapes({"conv1": 0.4, "conv2": 0.4, "fc1": 0.4}, round_to=8)
    assert shapes["conv1"][1] == 8  # round(3.2 / 8) = 0 -> at least one unit (all 8)
    assert shapes["conv2"][1] == 8
    assert shapes["fc1"][1] == 8


def test_group_reaching_an_input_residual_is_frozen():
    class InputResidual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
            self.conv2 = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.conv1(x)
            return self.fc(self.conv2(x).mean(dim=(2, 3)))

    model, x = InputResidual(), torch.randn(2, 3, 8, 8)
    plan = ChannelPlan.build(model, x)
    assert plan.controller("conv1") is None
    assert plan.prunable == ("conv2",)
    pruned = prune_channels(model, x, {"conv1": 0.3, "conv2": 0.5})
    assert pruned.conv1.out_channels == 3 and pruned.conv2.out_channels == 4
    assert pruned(x).shape == (2, 10)


@pytest.mark.parametrize(
    ("keep", "fragment"),
    [
        ({"nope": 0.5}, "nope"),
        ({"conv1": 0.0}, "conv1"),
        ({"conv1": 1.5}, "conv1"),
        ({"conv1": math.nan}, "conv1"),
        ({"fc2": 0.5}, "classifier"),
    ],
)
def test_bad_keep_ratios_raise(make_tiny_model, example_input, keep, fragment):
    plan = ChannelPlan.build(make_tiny_model("chain"), example_input)
    with pytest.raises(AutopruneError, match=fragment):
        plan.pruned_shapes(keep)


def test_bad_round_to_raises(make_tiny_model, example_input):
    plan = ChannelPlan.build(make_tiny_model("chain"), example_input)
    with pytest.raises(AutopruneError, match="round_to"):
        plan.pruned_shapes({"conv1": 0.5}, round_to=0)


@given(
    ratio=st.floats(min_value=1e-6, max_value=1.0),
    total=st.integers(min_value=1, max_value=512),
    unit=st.sampled_from([1, 2, 4, 8]),
)
def test_kept_count_is_bounded_and_aligned(ratio, total, unit):
    kept = kept_count(ratio, total, unit)
    assert 1 <= kept <= total
    assert kept == total or kept % unit == 0
    assert kept_count(1.0, total, unit) == total
    assert kept_count(min(1.0, ratio + 0.25), total, unit) >= kept


def test_kept_count_rounds_to_nearest():
    assert kept_count(0.5, 10) == 5
    assert kept_count(0.26, 10) == 3
    assert kept_count(0.001, 10) == 1
    assert kept_count(0.3, 64, unit=8) == 16


def test_pruned_specs_match_the_specs_of_the_pruned_model(tiny_model):
    _, model, x = tiny_model
    plan = ChannelPlan.build(model, x)
    keep = _random_keep(plan, random.Random(7))
    specs = discover_layers(model, tuple(x.shape[1:]))
    predicted = pruned_specs(specs, plan, keep, round_to=2)
    pruned = prune_channels(copy.deepcopy(model), x, keep, round_to=2)
    assert predicted == discover_layers(pruned, tuple(x.shape[1:]))


def test_pruned_specs_follow_a_grouped_conv_that_becomes_depthwise(make_tiny_model, example_input):
    model = make_tiny_model("grouped")
    plan = ChannelPlan.build(model, example_input)
    keep = dict.fromkeys(plan.prunable, 0.01)
    specs = discover_layers(model, (1, 8, 8))
    predicted = {s.name: s for s in pruned_specs(specs, plan, keep)}
    assert (predicted["group4.0"].kind, predicted["group4.0"].groups) == ("depthwise", 4)
    pruned = prune_channels(copy.deepcopy(model), example_input, keep)
    assert list(predicted.values()) == discover_layers(pruned, (1, 8, 8))
