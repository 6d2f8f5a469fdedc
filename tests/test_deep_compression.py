"""Deep Compression: cubic schedule, sensitivity scan, the three stages, bit-exact .apz."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.coding import inspect_apz, state_dict_from_apz
from autoprune.compress.sparsity import sparsity_mask
from autoprune.core.errors import AutopruneError
from autoprune.core.training import TrainConfig, train
from autoprune.data import DataSplits
from autoprune.deep_compression import (
    STAGES,
    DeepCompressionConfig,
    DeepCompressionResult,
    PruneSchedule,
    SensitivityScan,
    cubic_sparsity,
    deep_compress,
    gradual_prune,
    sensitivity_scan,
    step_batches,
    targets_for_budget,
)
from autoprune.workflow.baseline import build_for


@pytest.fixture(scope="module")
def trained(digits: DataSplits) -> nn.Module:
    torch.manual_seed(0)
    model = build_for("lenet300", digits)
    train(model, digits, TrainConfig(epochs=6, lr=0.05, batch_size=64))
    return model.eval()


def test_cubic_schedule_by_hand() -> None:
    # s_t = 0.9 - 0.9 (1 - t/4)^3: (1 - t/4)^3 = 1, 27/64, 1/8, 1/64, 0.
    expected = [0.0, 0.9 - 0.9 * 27 / 64, 0.9 - 0.9 / 8, 0.9 - 0.9 / 64, 0.9]
    assert [cubic_sparsity(t, 4, 0.9) for t in range(5)] == pytest.approx(expected)
    assert cubic_sparsity(0, 4, 0.9, initial=0.5) == pytest.approx(0.5)
    with pytest.raises(AutopruneError, match="0..4"):
        cubic_sparsity(5, 4, 0.9)


def test_step_batches_spread_over_the_ramp() -> None:
    assert step_batches(4, 100, 0.8) == [20, 40, 60, 80]
    assert step_batches(3, 2, 1.0) == [1, 1, 2]  # every step follows at least one batch
    with pytest.raises(AutopruneError, match="ramp"):
        step_batches(4, 100, 0.0)


def test_targets_for_budget_by_hand() -> None:
    # Densities 0.5 and 0.1 scaled by c: kept 50c and 10c (floored); 5 bits each, 500 bits
    # allow 100 weights: c just below 1.7 keeps 84 + 16 = 100.
    base = {"a": 0.5, "b": 0.9}
    targets = targets_for_budget({"a": 100, "b": 100}, {"a": 5, "b": 5}, 500, base)
    assert targets == {"a": 0.16, "b": 0.84}
    assert targets_for_budget({"a": 100}, {"a": 5}, 10**9) == {"a": 0.0}
    assert targets_for_budget({"a": 100, "b": 10}, {"a": 8, "b": 5}, 13) == {"a": 0.99, "b": 0.9}
    with pytest.raises(AutopruneError, match="one weight per layer"):
        targets_for_budget({"a": 100, "b": 10}, {"a": 8, "b": 5}, 12)


def test_sensitivity_targets_by_hand() -> None:
    scan = SensitivityScan(0.90, (0.5, 0.8, 0.9), {"a": (0.90, 0.89, 0.70), "b": (0.80,) * 3})
    assert scan.targets(0.01) == {"a": 0.8, "b": 0.0}
    assert scan.targets(0.2) == {"a": 0.9, "b": 0.9}
    with pytest.raises(AutopruneError, match="tolerance"):
        scan.targets(-0.1)


def test_sensitivity_scan_restores_the_model(trained: nn.Module, digits: DataSplits) -> None:
    model = copy.deepcopy(trained)
    scan = sensitivity_scan(model, digits.x_val, digits.y_val, ["fc1", "fc3"], (0.0, 0.99))
    assert scan.accuracy["fc1"][0] == scan.baseline  # sparsity 0 changes nothing
    assert scan.accuracy["fc3"][1] < scan.baseline  # 99% of the classifier gone hurts
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_gradual_pruning_follows_the_cubic_schedule(trained: nn.Module, digits: DataSplits) -> None:
    model = copy.deepcopy(trained)
    finals = {"fc1": 0.9, "fc2": 0.75, "fc3": 0.0}
    schedule = PruneSchedule(steps=4, ramp=0.5)
    history = gradual_prune(model, digits, finals, schedule, epochs=2, lr=0.01)
    batches = 2 * len(digits.loader("train", 128))
    assert [h.step for h in history] == [0, 1, 2, 3, 4]
    assert [h.batch for h in history] == [0, *step_batches(4, batches, 0.5)]
    for step in history:
        for name, final in (("fc1", 0.9), ("fc2", 0.75)):
            count = model.get_submodule(name).weight.numel()
            scheduled = cubic_sparsity(step.step, 4, final)
            assert step.target[name] == pytest.approx(scheduled)
            assert step.sparsity[name] == round(scheduled * count) / count
    assert sparsity_mask(model.fc3) is None  # target 0: never masked


def test_one_shot_pruning_applies_every_step(trained: nn.Module, digits: DataSplits) -> None:
    model = copy.deepcopy(trained)
    history = gradual_prune(model, digits, {"fc2": 0.5}, PruneSchedule(steps=2), epochs=0, lr=0.01)
    assert [h.sparsity["fc2"] for h in history] == [0.0, 0.5 - 0.5 / 8, 0.5]


@pytest.fixture(scope="module")
def compressed(
    trained: nn.Module, digits: DataSplits, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DeepCompressionResult, Path]:
    folder = tmp_path_factory.mktemp("dc")
    config = DeepCompressionConfig(
        tolerance=0.03,
        grid=(0.5, 0.7, 0.9),
        prune_epochs=2,
        schedule=PruneSchedule(steps=3),
        quant_epochs=1,
    )
    return deep_compress(trained, digits, config, out_dir=folder), folder


def test_stages_shrink_the_file(compressed: tuple[DeepCompressionResult, Path]) -> None:
    result, folder = compressed
    assert list(result.stages) == list(STAGES)
    sizes = [result.stages[s].file_bytes for s in STAGES]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    for stage in STAGES[1:]:
        report = inspect_apz(folder / f"{stage}.apz")
        assert report.file_bytes == result.stages[stage].file_bytes
        assert result.stages[stage].ratio == pytest.approx(report.compression_ratio)
    assert result.stages["original"].ratio == 1.0
    assert result.stages["quantized"].test_accuracy == result.stages["huffman"].test_accuracy
    assert result.stages["huffman"].val_accuracy > 0.8


def test_targets_come_from_the_scan_and_are_reached(
    compressed: tuple[DeepCompressionResult, Path],
) -> None:
    result, _ = compressed
    assert result.scan is not None
    assert result.targets == result.scan.targets(0.03)
    for name, layer in result.policy.layers.items():
        count = result.model.get_submodule(name).weight.numel()
        assert layer.sparsity == round(result.targets[name] * count) / count
        assert (layer.w_bits, layer.quantizer) == (5, "kmeans")  # all fc layers


def test_deep_compression_round_trips_bit_exactly(
    compressed: tuple[DeepCompressionResult, Path], tmp_path: Path
) -> None:
    result, folder = compressed
    result.write_apz(tmp_path / "model.apz")
    for path in (tmp_path / "model.apz", folder / "huffman.apz", folder / "quantized.apz"):
        state = state_dict_from_apz(path)
        for key, value in result.model.state_dict().items():
            assert torch.equal(state[key], value), (path.name, key)


def test_given_targets_skip_the_scan(trained: nn.Module, digits: DataSplits) -> None:
    config = DeepCompressionConfig(targets={"fc1": 0.8}, prune_epochs=0, quant_epochs=0)
    result = deep_compress(trained, digits, config)
    assert result.scan is None
    assert result.targets == {"fc1": 0.8, "fc2": 0.0, "fc3": 0.0}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DeepCompressionConfig(fc_bits=9), "fc_bits"),
        (DeepCompressionConfig(targets={"fc9": 0.5}), "unknown layer in targets"),
        (DeepCompressionConfig(targets={"fc1": 1.0}), r"outside \[0, 1\)"),
        (DeepCompressionConfig(layout="zip"), "unknown layout"),
    ],
)
def test_bad_settings_fail(
    config: DeepCompressionConfig, message: str, trained: nn.Module, digits: DataSplits
) -> None:
    with pytest.raises(AutopruneError, match=message):
        deep_compress(trained, digits, config)
