"""``retrain``: masks held, codebooks shared, 1-bit layers stable, never worse than the start."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.coding import state_dict_from_apz
from autoprune.compress import apply_weight_compression, independent_copy
from autoprune.compress.quantize import KMeansWeightQuant
from autoprune.compress.retrain import RETRIES, normalise_centroid_steps, retrain
from autoprune.compress.sparsity import sparsity_mask
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy
from autoprune.core.training import TrainConfig, finetune, split_accuracy, train
from autoprune.data import DataSplits
from autoprune.deep_compression import CodedModel, effective_state_dict
from autoprune.workflow.baseline import build_for


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


@pytest.fixture(scope="module")
def trained(digits: DataSplits) -> nn.Module:
    torch.manual_seed(0)
    model = _mlp()
    train(model, digits, TrainConfig(epochs=4, lr=0.05, batch_size=64))
    return model.eval()


def _compressed(model: nn.Module, layers: dict[str, LayerPolicy]) -> nn.Module:
    compressed = copy.deepcopy(model)
    apply_weight_compression(compressed, layers)
    return compressed.eval()


def test_masks_hold_under_momentum_and_weight_decay(trained: nn.Module, digits) -> None:
    layers = {"1": LayerPolicy(sparsity=0.9), "3": LayerPolicy(w_bits=3, sparsity=0.7)}
    model = _compressed(trained, layers)
    masks = {n: sparsity_mask(model.get_submodule(n)).clone() for n in layers}
    # A score that rises every epoch, so that the last (most trained) state is kept.
    calls = iter(range(100))
    retrain(model, digits, 2, lr=0.1, score=lambda m: float(next(calls)))
    for name, mask in masks.items():
        weight = model.get_submodule(name).weight.detach()
        assert torch.equal(weight[~mask], torch.zeros(int((~mask).sum()))), name
    assert bool((model.get_submodule("1").weight.detach()[masks["1"]] != 0).all())
    before = trained.get_submodule("1").weight.detach()[masks["1"]]
    assert not torch.allclose(model.get_submodule("1").weight.detach()[masks["1"]], before)


def test_retrained_codebooks_stay_shared_and_decode_exactly(
    trained: nn.Module, digits: DataSplits, tmp_path: Path
) -> None:
    layers = {n: LayerPolicy(w_bits=2, sparsity=0.8, quantizer="kmeans") for n in ("1", "3")}
    model = _compressed(trained, layers)
    start = model.get_submodule("1").parametrizations.weight[1].centroids.detach().clone()
    calls = iter(range(100))
    retrain(model, digits, 2, lr=0.05, score=lambda m: float(next(calls)))
    for name in layers:
        weight = model.get_submodule(name).weight.detach()
        assert len(torch.unique(weight[weight != 0])) <= 4, name  # 2 bits: at most 4 values
    centroids = model.get_submodule("1").parametrizations.weight[1].centroids.detach()
    assert not torch.equal(centroids, start)  # the codebook itself was trained
    effective = effective_state_dict(model)
    coded = CodedModel.freeze(independent_copy(model), list(layers))
    coded.write_apz(tmp_path / "m.apz")
    decoded = state_dict_from_apz(tmp_path / "m.apz")
    for key, value in effective.items():
        assert torch.equal(decoded[key], value), key


def test_one_bit_layers_retrain_where_summed_gradients_diverge(digits: DataSplits) -> None:
    torch.manual_seed(0)
    lenet = build_for("lenet300", digits)  # fc1 64x300, fc2 300x100: clusters of 10^4 weights
    train(lenet, digits, TrainConfig(epochs=4, lr=0.05, batch_size=64))
    layers = {n: LayerPolicy(w_bits=1, quantizer="kmeans") for n in ("fc1", "fc2")}
    model = _compressed(lenet.eval(), layers)
    start = split_accuracy(model, digits)
    plain = independent_copy(model)  # the old loop: each centroid steps by its summed gradient
    finetune(plain, digits, 2, lr=0.05)
    assert split_accuracy(plain.eval(), digits) < 0.2  # chance level: it diverged
    result = retrain(model, digits, 2, lr=0.05)
    assert result.attempts[0].diverged is None  # no retry was needed
    assert result.score > start and split_accuracy(model, digits) == result.score


def test_divergence_is_retried_lower_and_never_ships_worse(
    trained: nn.Module, digits: DataSplits
) -> None:
    model = _compressed(trained, {"1": LayerPolicy(w_bits=4, quantizer="linear")})
    state = copy.deepcopy(model.state_dict())
    result = retrain(model, digits, 1, lr=1e30)
    assert len(result.attempts) == RETRIES + 1
    assert all(a.diverged for a in result.attempts)
    assert [a.lr for a in result.attempts] == pytest.approx([1e30, 2e29, 4e28])
    assert result.best_epoch == 0 and not result.improved
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key  # exactly the model it was given


def test_a_score_halfway_to_chance_stops_the_attempt(trained: nn.Module, digits) -> None:
    model = _compressed(trained, {"3": LayerPolicy(sparsity=0.5)})
    scores = iter([0.9] + [0.3] * 10)  # start, then below (0.9 + 0.1) / 2 after each epoch

    result = retrain(model, digits, 3, score=lambda m: next(scores), chance=0.1)
    assert len(result.attempts) == RETRIES + 1
    for attempt in result.attempts:
        assert attempt.scores == [0.3] and "fell to 0.3000 after epoch 1" in str(attempt.diverged)
    assert result.score == 0.9 and not result.improved


def test_the_best_epoch_is_kept(trained: nn.Module, digits: DataSplits) -> None:
    model = _compressed(trained, {"3": LayerPolicy(sparsity=0.5)})
    scores = iter([0.5, 0.9, 0.6, 0.7])  # start, epochs 1..3
    snapshots: list[torch.Tensor] = []

    def score(m: nn.Module) -> float:
        snapshots.append(m.get_submodule("3").weight.detach().clone())
        return next(scores)

    result = retrain(model, digits, 3, lr=0.01, score=score)
    assert (result.best_epoch, result.score, result.best_lr) == (1, 0.9, 0.01)
    assert torch.equal(model.get_submodule("3").weight.detach(), snapshots[1])


def test_centroid_steps_are_the_mean_of_the_members_gradients() -> None:
    layer = nn.Linear(4, 1, bias=False)
    quant = KMeansWeightQuant(torch.tensor([-1.0, 1.0]), torch.tensor([[0, 0, 0, 1]]), bits=1)
    parametrize.register_parametrization(layer, "weight", quant)
    handles = normalise_centroid_steps(layer)
    layer.weight.sum().backward()  # each member's gradient is 1: sums 3 and 1, means 1 and 1
    assert quant.centroids.grad is not None and quant.centroids.grad.tolist() == [1.0, 1.0]
    for handle in handles:
        handle.remove()
    quant.centroids.grad = None
    layer.weight.sum().backward()
    assert quant.centroids.grad.tolist() == [3.0, 1.0]  # Deep Compression's summed gradient


def test_bad_settings_are_refused(trained: nn.Module, digits: DataSplits) -> None:
    with pytest.raises(AutopruneError, match="at least 1"):
        retrain(copy.deepcopy(trained), digits, 0)
    with pytest.raises(AutopruneError, match="positive"):
        retrain(copy.deepcopy(trained), digits, 1, lr=0.0)
