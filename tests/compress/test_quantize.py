from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.compress.kmeans import kmeans_1d
from autoprune.compress.quantize import (
    KMeansWeightQuant,
    LinearWeightQuant,
    apply_weight_compression,
    export_quantized,
    quantize_weights,
    squash,
)
from autoprune.compress.sparsity import sparsity_mask
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 4))


def _inputs() -> torch.Tensor:
    return torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(7))


def _rows(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().reshape(weight.shape[0], -1)


def test_four_bit_linear_is_symmetric_per_channel_with_at_most_15_values() -> None:
    model = _model()
    latent = _rows(model[0].weight).clone()
    quantize_weights(model, {"0": LayerPolicy(w_bits=4)})
    rows = _rows(model[0].weight)
    scale = latent.abs().amax(1) / 7
    for c in range(rows.shape[0]):
        assert len(rows[c].unique()) <= 15
        levels = rows[c] / scale[c]
        assert torch.allclose(levels, levels.round(), atol=1e-4)
        assert levels.abs().max().round() == 7
    assert torch.allclose(rows, (latent / scale[:, None]).round() * scale[:, None], atol=1e-6)


def test_one_bit_linear_gives_plus_minus_mean_magnitude() -> None:
    model = _model()
    latent = _rows(model[3].weight).clone()
    quantize_weights(model, {"3": LayerPolicy(w_bits=1)})
    rows = _rows(model[3].weight)
    for c in range(rows.shape[0]):
        s = latent[c].abs().mean()
        assert rows[c].unique().tolist() == pytest.approx([-float(s), float(s)])
        assert torch.equal(rows[c] > 0, latent[c] >= 0)


def test_all_zero_channel_stays_zero() -> None:
    model = _model()
    with torch.no_grad():
        model[0].weight[2].zero_()
    quantize_weights(model, {"0": LayerPolicy(w_bits=3)})
    assert torch.all(model[0].weight[2] == 0)
    assert torch.isfinite(model[0].weight).all()


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_kmeans_layer_has_at_most_two_to_the_bits_values(bits: int) -> None:
    model = _model()
    quantize_weights(model, {"3": LayerPolicy(w_bits=bits, quantizer="kmeans")})
    assert len(model[3].weight.detach().unique()) <= 2**bits


def test_linear_ste_passes_the_gradient_to_the_latent_weight() -> None:
    model = nn.Sequential(nn.Linear(5, 3))
    quantize_weights(model, {"0": LayerPolicy(w_bits=2)})
    x = torch.randn(6, 5)
    r = torch.randn(6, 3)
    (model(x) * r).sum().backward()
    latent = model[0].parametrizations["weight"].original
    assert torch.allclose(latent.grad, r.T @ x, atol=1e-5)


def test_kmeans_centroid_gradient_is_the_sum_over_its_members() -> None:
    model = nn.Sequential(nn.Linear(6, 4))
    quantize_weights(model, {"0": LayerPolicy(w_bits=2, quantizer="kmeans")})
    x = torch.randn(5, 6)
    r = torch.randn(5, 4)
    (model(x) * r).sum().backward()
    quant = model[0].parametrizations["weight"][0]
    assert isinstance(quant, KMeansWeightQuant)
    weight_grad = r.T @ x  # d loss / d W for y = x W^T + b
    expected = torch.zeros_like(quant.centroids)
    for index, member in enumerate(quant.assignments.reshape(-1).tolist()):
        expected[member] += weight_grad.reshape(-1)[index]
    assert torch.allclose(quant.centroids.grad, expected, atol=1e-5)
    assert model[0].parametrizations["weight"].original.grad is None


CONFIGS = [
    LayerPolicy(),
    LayerPolicy(sparsity=0.6),
    *[LayerPolicy(w_bits=b) for b in (1, 2, 4, 8)],
    *[LayerPolicy(w_bits=b, sparsity=0.6) for b in (1, 3, 8)],
    *[LayerPolicy(w_bits=b, quantizer="kmeans") for b in (1, 3)],
    LayerPolicy(w_bits=4, quantizer="kmeans", sparsity=0.6),
]


@pytest.mark.parametrize("policy", CONFIGS, ids=repr)
def test_export_dequantizes_to_the_effective_weight_bit_for_bit(policy: LayerPolicy) -> None:
    model = _model()
    apply_weight_compression(model, {"0": policy, "3": policy})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(2):  # the exported state must follow fine-tuning
        optimizer.zero_grad()
        model(_inputs()).pow(2).mean().backward()
        optimizer.step()
    exported = export_quantized(model, ["0", "3"])
    for name, coded in exported.items():
        weight = model.get_submodule(name).weight.detach()
        assert torch.equal(torch.from_numpy(coded.dequantize()), weight)
        assert coded.scheme == ("float" if policy.w_bits == 32 else policy.quantizer)
        assert coded.bits == policy.w_bits
        assert (coded.mask is None) == (policy.sparsity == 0)
        assert coded.codes.dtype.name == "int32" and coded.codebook.dtype.name == "float32"
        if coded.scheme == "kmeans":
            assert len(coded.codebook) <= 2**policy.w_bits


def test_squash_keeps_outputs_and_removes_every_parametrization() -> None:
    model = _model()
    apply_weight_compression(
        model,
        {
            "0": LayerPolicy(w_bits=3, sparsity=0.5),
            "3": LayerPolicy(w_bits=2, quantizer="kmeans", sparsity=0.3),
        },
    )
    x = _inputs()
    before = model(x).detach()
    assert squash(model) is model
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert all(isinstance(model[i].weight, nn.Parameter) for i in (0, 3))
    assert torch.equal(model(x), before)
    assert "0.weight" in model.state_dict()
    assert export_quantized(model, ["0"])["0"].scheme == "float"


def test_sparsity_and_kmeans_keep_zeros_and_cluster_only_the_rest() -> None:
    model = _model()
    apply_weight_compression(model, {"3": LayerPolicy(w_bits=3, quantizer="kmeans", sparsity=0.5)})
    mask = sparsity_mask(model[3])
    latent = model[3].parametrizations["weight"].original.detach()
    expected, _ = kmeans_1d(latent[mask], bits=3)
    quant = model[3].parametrizations["weight"][1]
    assert torch.equal(quant.centroids.detach(), expected)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        model(_inputs()).pow(2).sum().backward()
        optimizer.step()
    weight = model[3].weight.detach()
    assert torch.all(weight[~mask] == 0)
    assert not torch.equal(quant.centroids.detach(), expected)
    assert len(weight[mask].unique()) <= 8


def test_sparsity_is_applied_before_the_quantizer() -> None:
    model = _model()
    apply_weight_compression(model, {"0": LayerPolicy(w_bits=1, sparsity=0.5)})
    chain = list(model[0].parametrizations["weight"])
    assert [type(p).__name__ for p in chain] == ["SparsityMask", "LinearWeightQuant"]
    assert float((model[0].weight == 0).float().mean()) == 0.5


def test_deepcopy_of_a_quantized_model_is_independent() -> None:
    model = _model()
    apply_weight_compression(model, {"3": LayerPolicy(w_bits=2, quantizer="kmeans")})
    clone = copy.deepcopy(model)
    x = _inputs()
    assert torch.equal(clone(x), model(x))
    with torch.no_grad():
        clone[3].parametrizations["weight"][0].centroids.add_(1.0)
    assert not torch.equal(clone(x), model(x))


def test_float_layers_are_left_unparametrized() -> None:
    model = _model()
    quantize_weights(model, {"0": LayerPolicy(), "3": LayerPolicy(w_bits=8)})
    assert not parametrize.is_parametrized(model[0])
    assert isinstance(model[3].parametrizations["weight"][0], LinearWeightQuant)


@pytest.mark.parametrize("bits", [0, 9, 16])
def test_bad_bits_raise_and_change_nothing(bits: int) -> None:
    model = _model()
    with pytest.raises(AutopruneError, match="w_bits"):
        apply_weight_compression(
            model, {"0": LayerPolicy(w_bits=4, sparsity=0.5), "3": LayerPolicy(w_bits=bits)}
        )
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_bad_names_and_double_quantization_raise() -> None:
    model = _model()
    with pytest.raises(AutopruneError, match="unknown layer 'conv'"):
        quantize_weights(model, {"conv": LayerPolicy(w_bits=4)})
    with pytest.raises(AutopruneError, match="unknown layer '2'"):
        export_quantized(model, ["2"])
    quantize_weights(model, {"0": LayerPolicy(w_bits=4)})
    with pytest.raises(AutopruneError, match="already quantized"):
        quantize_weights(model, {"0": LayerPolicy(w_bits=4)})
    with pytest.raises(AutopruneError, match="1..8"):
        LinearWeightQuant(0)


def test_every_layer_of_every_tiny_architecture_exports_bit_exactly(tiny_model: tuple) -> None:
    _, model, example = tiny_model
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    kinds = ("linear", "kmeans")
    policies = {
        name: LayerPolicy(w_bits=1 + i % 8, sparsity=0.3 * (i % 3), quantizer=kinds[i % 2])
        for i, name in enumerate(names)
    }
    apply_weight_compression(model, policies)
    before = model.eval()(example).detach()
    for name, coded in export_quantized(model, names).items():
        weight = model.get_submodule(name).weight.detach()
        assert torch.equal(torch.from_numpy(coded.dequantize()), weight), name
    assert torch.equal(squash(model)(example), before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compression_lifecycle_on_cuda() -> None:
    model = _model().cuda()
    apply_weight_compression(
        model,
        {
            "0": LayerPolicy(w_bits=4, sparsity=0.5),
            "3": LayerPolicy(w_bits=3, quantizer="kmeans", sparsity=0.5),
        },
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = _inputs().cuda()
    for _ in range(3):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()
    for name, coded in export_quantized(model, ["0", "3"]).items():
        weight = model.get_submodule(name).weight.detach().cpu()
        assert torch.equal(torch.from_numpy(coded.dequantize()), weight)
        assert float((weight == 0).float().mean()) >= 0.5
    before = model(x).detach()
    assert torch.equal(squash(model)(x), before)
