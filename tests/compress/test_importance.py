from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn

from autoprune.compress.importance import (
    ActivationImportance,
    importance_names,
    make_importance,
    split_batch,
)
from autoprune.compress.pruning import channel_scores
from autoprune.core.errors import AutopruneError


class TwoConv(nn.Module):
    """conv1 (4 filters over 2 inputs, 1x1) -> ReLU -> conv2 with all-equal weights -> fc."""

    def __init__(self, filters: list[list[float]]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 3, 1, bias=False)
        self.fc = nn.Linear(3, 10)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor(filters).view(4, 2, 1, 1))
            self.conv2.weight.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(torch.relu(self.conv1(x))).mean(dim=(2, 3)))


X = torch.rand(2, 2, 4, 4)
BATCHES = [(torch.rand(8, 2, 4, 4), torch.randint(0, 10, (8,))) for _ in range(2)]


def test_registry_lists_every_criterion_and_rejects_unknown_names():
    names = importance_names()
    assert {"l1", "l2", "bn_scale", "fpgm", "taylor", "activation", "apoz", "random"} <= set(names)
    assert make_importance("l1") is not make_importance("l1")
    with pytest.raises(AutopruneError, match="unknown importance 'l3'"):
        make_importance("l3")


@pytest.mark.parametrize("name", importance_names())
def test_every_criterion_scores_each_channel(make_tiny_model, example_input, name):
    model = make_tiny_model("chain")
    batches = [torch.randn(4, 1, 8, 8) for _ in range(2)]
    scores = channel_scores(model, example_input, "conv2", name, calib_batches=batches)
    assert scores.shape == (16,)
    assert torch.isfinite(scores).all()
    assert model.conv2.out_channels == 16


def test_l1_and_l2_pick_the_smallest_filter():
    model = TwoConv([[1.0, 1.0], [2.0, -1.0], [0.01, 0.01], [-1.5, 1.0]])
    for name in ("l1", "l2"):
        assert int(channel_scores(model, X, "conv1", name).argmin()) == 2


def test_fpgm_picks_the_filter_nearest_the_others():
    # |w|^2 gives [0,0], [4,0], [0,4], [1,1]: the last is closest to the rest, the first smallest
    model = TwoConv([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert int(channel_scores(model, X, "conv1", "fpgm").argmin()) == 3
    assert int(channel_scores(model, X, "conv1", "l1").argmin()) == 0


def test_bn_scale_picks_the_smallest_gamma(make_tiny_model, example_input):
    model = make_tiny_model("chain")
    with torch.no_grad():
        model.bn2.weight.copy_(torch.linspace(1.0, 2.0, 16))
        model.bn2.weight[11] = 0.05
    assert int(channel_scores(model, example_input, "conv2", "bn_scale").argmin()) == 11


def test_taylor_scores_a_zero_filter_zero():
    model = TwoConv([[1.0, 1.0], [2.0, -1.0], [0.0, 0.0], [-1.5, 1.0]])
    scores = channel_scores(model, X, "conv1", "taylor", calib_batches=BATCHES)
    assert scores[2] == 0.0 and (scores[[0, 1, 3]] > 0).all()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["activation", "apoz"])
def test_activation_criteria_find_a_dead_channel(name):
    model = TwoConv([[1.0, 1.0], [-3.0, -3.0], [0.5, 0.2], [1.5, 1.0]])  # inputs are >= 0
    scores = channel_scores(model, X, "conv1", name, calib_batches=BATCHES)
    assert int(scores.argmin()) == 1 and scores[1] == 0.0


def test_activation_statistics_are_exact():
    model = TwoConv([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    batch = torch.rand(4, 2, 3, 3)
    scores = channel_scores(model, X, "conv1", "activation", calib_batches=[batch])
    expected = torch.relu(model.conv1(batch)).mean(dim=(0, 2, 3)).detach()
    assert torch.allclose(scores, expected, atol=1e-6)


def test_data_criteria_need_batches():
    model = TwoConv([[1.0, 1.0], [2.0, -1.0], [0.5, 0.2], [1.5, 1.0]])
    with pytest.raises(AutopruneError, match="calib"):
        channel_scores(model, X, "conv1", "apoz")
    with pytest.raises(AutopruneError, match="at least one batch"):
        make_importance("taylor").calibrate(model, [])
    with pytest.raises(AutopruneError, match="mode"):
        ActivationImportance(mode="median")


def test_random_is_seeded(make_tiny_model, example_input):
    model = make_tiny_model("chain")
    first = channel_scores(model, example_input, "conv2", make_importance("random"))
    second = channel_scores(model, example_input, "conv2", make_importance("random"))
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", ["l1", "l2", "fpgm", "bn_scale"])
def test_criteria_plug_into_torch_pruning(make_tiny_model, example_input, name):
    model = make_tiny_model("residual")
    pruner = tp.pruner.BasePruner(
        model,
        example_input,
        importance=make_importance(name),
        pruning_ratio=0.5,
        ignored_layers=[model.fc],
    )
    pruner.step()
    assert model.stem[0].out_channels == 4
    assert model(example_input).shape == (2, 10)


def test_split_batch_accepts_tensors_and_pairs():
    x, y = torch.zeros(2, 1), torch.ones(2)
    assert split_batch(x) == (x, None)
    assert split_batch((x, y)) == (x, y)
    assert split_batch([x]) == (x, None)
    with pytest.raises(AutopruneError, match="dict"):
        split_batch({"x": x})
