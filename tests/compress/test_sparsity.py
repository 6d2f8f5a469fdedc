from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.compress.quantize import quantize_weights, squash
from autoprune.compress.sparsity import (
    SparsityMask,
    apply_sparsity,
    magnitude_mask,
    sparsity_mask,
    sparsity_of,
)
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 4))


def test_exact_fraction_of_smallest_magnitudes() -> None:
    model = _model()
    masks = apply_sparsity(model, {"0": 0.37, "3": 0.9})
    assert set(masks) == {"0", "3"}
    for name, fraction in (("0", 0.37), ("3", 0.9)):
        layer = model.get_submodule(name)
        weight = layer.weight.detach()
        expected = round(fraction * weight.numel())
        assert int((~masks[name]).sum()) == expected
        assert int((weight == 0).sum()) == expected
        assert sparsity_of(model, name) == expected / weight.numel()
        latent = layer.parametrizations["weight"].original.detach().abs()
        assert latent[~masks[name]].max() <= latent[masks[name]].min()


def test_ties_still_give_the_exact_count() -> None:
    mask = magnitude_mask(torch.ones(3, 7), 0.5)
    assert int((~mask).sum()) == round(0.5 * 21)


def test_bias_is_not_pruned() -> None:
    model = _model()
    bias = model[3].bias.detach().clone()
    apply_sparsity(model, {"3": 0.5})
    assert torch.equal(model[3].bias.detach(), bias)


def test_sgd_with_momentum_and_decay_never_revives_a_pruned_weight() -> None:
    model = _model()
    masks = apply_sparsity(model, {"0": 0.6, "3": 0.75})
    before = model[3].weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    x = torch.randn(4, 3, 6, 6)
    for _ in range(5):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()
    for name in ("0", "3"):
        weight = model.get_submodule(name).weight.detach()
        assert torch.all(weight[~masks[name]] == 0)
    kept = model[3].weight.detach()[masks["3"]]
    assert not torch.equal(kept, before[masks["3"]])


def test_zero_sparsity_leaves_the_layer_alone() -> None:
    model = _model()
    assert apply_sparsity(model, {"0": 0.0}) == {}
    assert not parametrize.is_parametrized(model[0])


def test_pruning_again_never_revives_and_can_go_further() -> None:
    model = _model()
    first = apply_sparsity(model, {"3": 0.5})["3"].clone()
    lower = apply_sparsity(model, {"3": 0.25})["3"]
    assert torch.equal(lower, first)
    higher = apply_sparsity(model, {"3": 0.75})["3"]
    assert int((~higher).sum()) == round(0.75 * higher.numel())
    assert torch.all(~higher[~first])
    layers = [p for p in model[3].parametrizations["weight"] if isinstance(p, SparsityMask)]
    assert len(layers) == 1


def test_squash_keeps_zeros_in_a_plain_parameter() -> None:
    model = _model()
    apply_sparsity(model, {"3": 0.5})
    squash(model)
    assert not parametrize.is_parametrized(model[3])
    assert isinstance(model[3].weight, nn.Parameter)
    assert sparsity_of(model, "3") == 0.5
    assert sparsity_mask(model[3]) is None


@pytest.mark.parametrize("fraction", [1.0, -0.1, math.nan, 1.5])
def test_bad_fraction_raises_and_changes_nothing(fraction: float) -> None:
    model = _model()
    with pytest.raises(AutopruneError, match="sparsity"):
        apply_sparsity(model, {"0": 0.5, "3": fraction})
    assert not parametrize.is_parametrized(model[0])


def test_unknown_layer_raises() -> None:
    with pytest.raises(AutopruneError, match="unknown layer 'fc'; choose one of: 0, 3"):
        apply_sparsity(_model(), {"fc": 0.5})
    with pytest.raises(AutopruneError, match="unknown layer '1'"):
        sparsity_of(_model(), "1")


def test_sparsity_after_quantization_raises() -> None:
    model = _model()
    quantize_weights(model, {"3": LayerPolicy(w_bits=4)})
    with pytest.raises(AutopruneError, match="before quantization"):
        apply_sparsity(model, {"3": 0.5})
