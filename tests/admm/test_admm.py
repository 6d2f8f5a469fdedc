"""ADMM end to end on digits: feasible policy, untouched input, bit-exact .apz, bad budgets."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.admm import AdmmConfig, AdmmResult, admm_compress, check_budget, coded_cost
from autoprune.admm._admm import average_centroid_gradients
from autoprune.coding import read_apz, state_dict_from_apz
from autoprune.compress.quantize import KMeansWeightQuant
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import TrainConfig, train
from autoprune.data import DataSplits
from autoprune.workflow.baseline import build_for

WEIGHTS = 8 * 8 * 300 + 300 * 100 + 100 * 10  # lenet300 on 8x8 digits


@pytest.fixture(scope="module")
def trained(digits: DataSplits) -> nn.Module:
    torch.manual_seed(0)
    model = build_for("lenet300", digits)
    train(model, digits, TrainConfig(epochs=6, lr=0.05, batch_size=64))
    return model.eval()


@pytest.fixture(scope="module")
def result(trained: nn.Module, digits: DataSplits) -> tuple[AdmmResult, dict]:
    before = copy.deepcopy(trained.state_dict())
    config = AdmmConfig(epochs=2, finetune_epochs=1, batch_size=64, kmeans_iters=10)
    epochs = []
    out = admm_compress(trained, digits, 4 * WEIGHTS / 50, config, on_epoch=epochs.append)
    return out, {"before": before, "epochs": epochs}


def test_policy_is_feasible(result: tuple[AdmmResult, dict]) -> None:
    out, _ = result
    budget = 8 * 4 * WEIGHTS / 50
    assert out.budget_bits == budget
    used = 0
    for name, layer in out.policy.layers.items():
        module = out.model.get_submodule(name)
        nonzeros = int((module.weight != 0).sum())
        assert layer.quantizer == "kmeans" and 1 <= layer.w_bits <= 8
        assert nonzeros <= round((1 - layer.sparsity) * module.weight.numel())
        assert len(set(module.weight[module.weight != 0].tolist())) <= 2**layer.w_bits
        used += layer.w_bits * round((1 - layer.sparsity) * module.weight.numel())
    assert used == out.yang_bits <= budget
    assert out.policy.meta["method"] == "admm"


def test_history_and_untouched_input(
    result: tuple[AdmmResult, dict], trained: nn.Module, digits: DataSplits
) -> None:
    out, extra = result
    assert [e.epoch for e in out.history] == [1, 2]
    assert extra["epochs"] == out.history
    assert out.history[1].rho == pytest.approx(out.history[0].rho * 1.5)
    assert all(e.yang_bits <= out.budget_bits for e in out.history)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, extra["before"][key])
    assert out.val_accuracy > 0.5  # 50x smaller, two ADMM epochs: still far above chance
    Policy.from_dict(out.policy.to_dict()).validate(discover_layers(trained, digits.input_shape))


def test_apz_round_trip_is_bit_exact(result: tuple[AdmmResult, dict], tmp_path: Path) -> None:
    out, _ = result
    report = out.write_apz(tmp_path / "admm.apz")
    state = state_dict_from_apz(tmp_path / "admm.apz")
    model_state = out.model.state_dict()
    assert state.keys() == model_state.keys()
    for key, value in model_state.items():
        assert torch.equal(state[key], value), key
    assert report.yang_bytes * 8 == out.yang_bits
    _, _, metadata = read_apz(tmp_path / "admm.apz")
    assert metadata["policy"]["meta"]["method"] == "admm"


@pytest.mark.parametrize("budget", [0, -5, 4 * WEIGHTS + 1, math.nan])
def test_bad_budgets_fail_with_the_range(
    budget: float, trained: nn.Module, digits: DataSplits
) -> None:
    with pytest.raises(AutopruneError, match=rf"outside \(0, {4 * WEIGHTS}\]"):
        admm_compress(trained, digits, budget, AdmmConfig(epochs=0, finetune_epochs=0))


def test_check_budget_accepts_the_dense_size() -> None:
    assert check_budget(4000, 1000) == 32_000.0


def test_bad_settings_fail(trained: nn.Module, digits: DataSplits) -> None:
    with pytest.raises(AutopruneError, match="rho"):
        admm_compress(trained, digits, 1000, AdmmConfig(rho=0))
    with pytest.raises(AutopruneError, match="unknown layer"):
        admm_compress(trained, digits, 1000, AdmmConfig(layers=("fc9",)))


def test_centroid_gradients_are_member_means() -> None:
    layer = nn.Linear(4, 1, bias=False)
    quant = KMeansWeightQuant(torch.tensor([-1.0, 1.0]), torch.tensor([[0, 0, 0, 1]]), bits=1)
    parametrize.register_parametrization(layer, "weight", quant)
    layer.weight.sum().backward()  # every weight's gradient is 1: sums would be [3, 1]
    assert quant.centroids.grad.tolist() == [3.0, 1.0]
    quant.centroids.grad = None
    average_centroid_gradients(layer)
    layer.weight.sum().backward()
    assert quant.centroids.grad.tolist() == [1.0, 1.0]


def test_budget_with_index_and_codebook_overhead(trained: nn.Module, digits: DataSplits) -> None:
    index = {"fc1": 5, "fc2": 5, "fc3": 5}
    config = AdmmConfig(epochs=1, finetune_epochs=0, index_bits=index, codebook_bits=32)
    out = admm_compress(trained, digits, 4 * WEIGHTS / 20, config)
    assert out.cost_bits == coded_cost(out.coded, config.overhead) <= out.budget_bits
    assert out.yang_bits + 5 * sum(q.nonzeros for q in out.coded.weights.values()) < out.cost_bits
