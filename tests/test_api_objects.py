"""The Python API on objects: an nn.Module, DataLoaders, a user metric, no names anywhere."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autoprune
from autoprune.core.errors import AutopruneError
from autoprune.data import DataSplits


def small_cnn() -> nn.Sequential:
    """A user's own network: no zoo name, no file."""
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, padding=1),
        nn.BatchNorm2d(12),
        nn.ReLU(),
        nn.Conv2d(12, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


@pytest.fixture(scope="module")
def loaders(digits: DataSplits) -> dict[str, DataLoader]:
    """The user's loaders of digits (as a training script would have them)."""
    return {
        split: DataLoader(TensorDataset(*digits.tensors(split)), batch_size=64, shuffle=False)
        for split in ("train", "val", "test")
    }


@pytest.fixture(scope="module")
def trained(loaders: dict[str, DataLoader]) -> nn.Module:
    torch.manual_seed(0)
    return autoprune.train(small_cnn(), loaders, epochs=4, lr=0.05)


@pytest.fixture(scope="module")
def object_run(trained, loaders, tmp_path_factory) -> autoprune.SearchRun:
    runs = tmp_path_factory.mktemp("objects") / "runs"
    return autoprune.search(
        trained, loaders, target="flops=0.6", agent="random", episodes=4, runs_dir=runs
    )


def test_train_takes_a_module_and_loaders(trained, loaders):
    assert not trained.training
    correct = total = 0
    with torch.no_grad():
        for x, y in loaders["val"]:
            correct += int((trained(x).argmax(1) == y).sum())
            total += len(y)
    assert correct / total > 0.5  # learnt far beyond chance (0.1)


def test_search_apply_load_with_no_names(object_run, trained, loaders, tmp_path):
    before = copy.deepcopy(trained.state_dict())
    assert object_run.best_policy is not None and len(object_run.history) == 4
    assert object_run.run_name.startswith("object-Sequential__random__0__")
    config = json.loads((object_run.run_dir / "config.json").read_text())
    assert config["model"] == "object:Sequential" and config["dataset"] == "object:data"
    inputs = json.loads((object_run.run_dir / "inputs.json").read_text())
    assert inputs["model_class"] == "torch.nn.modules.container.Sequential"
    assert inputs["data"]["train"] == len(loaders["train"].dataset)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())

    applied = autoprune.apply(object_run)
    assert isinstance(applied.model, nn.Module) and applied.files == {}
    assert not (object_run.run_dir.parents[1] / "exports").exists()
    scored = object_run.best_policy.metrics["accuracy"]
    assert applied.compressed["val_accuracy"] == pytest.approx(scored)
    assert applied.evaluation["same_images"]

    out = tmp_path / "export"
    exported = autoprune.apply(object_run, export_dir=out)
    assert (out / "model.apz").is_file() and set(exported.files) >= {"apz", "onnx", "report"}
    with pytest.raises(AutopruneError, match=r"Python object \(Sequential\).*model="):
        autoprune.load_compressed(out / "model.apz")
    loaded = autoprune.load_compressed(out / "model.apz", model=small_cnn())
    x = next(iter(loaders["test"]))[0]
    with torch.no_grad():
        assert torch.allclose(loaded(x), exported.model.eval()(x), atol=1e-4)
    conv = [m for m in loaded.modules() if isinstance(m, nn.Conv2d)]
    assert sum(c.out_channels for c in conv) < 28  # channels really removed


def test_resume_with_other_weights_is_refused(object_run, trained, loaders):
    other = copy.deepcopy(trained)
    with torch.no_grad():
        other[0].weight.mul_(1.01)
    runs = object_run.run_dir.parents[1]
    with pytest.raises(AutopruneError, match="other weights"):
        autoprune.search(
            other, loaders, target="flops=0.6", agent="random", episodes=6,
            runs_dir=runs, resume=object_run.run_name,
        )  # fmt: skip
    resumed = autoprune.search(
        trained, loaders, target="flops=0.6", agent="random", episodes=6,
        runs_dir=runs, resume=object_run.run_name,
    )  # fmt: skip
    assert len(resumed.history) == 6
    assert [r.metrics for r in resumed.history[:4]] == [r.metrics for r in object_run.history]


def test_user_metric_drives_the_search(trained, loaders, tmp_path):
    """A metric that ranks policies opposite to accuracy: the search follows the metric."""
    val = loaders["val"]

    def error_rate(model: nn.Module) -> float:  # higher is "better": the inverse of accuracy
        wrong = total = 0
        with torch.no_grad():
            for x, y in val:
                wrong += int((model(x).argmax(1) != y).sum())
                total += len(y)
        return wrong / total

    run = autoprune.search(
        trained, loaders, target="flops=0.6", agent="random", episodes=6,
        runs_dir=tmp_path / "runs", evaluate=error_rate, val_samples=None,
    )  # fmt: skip
    feasible = [r for r in run.history if r.feasible]
    assert len({round(r.metrics["accuracy"], 6) for r in feasible}) > 1
    plain = autoprune.apply(run.best_policy, trained, loaders)  # scored by top-1 here
    best_error = max(r.metrics["accuracy"] for r in feasible)
    assert run.best.metrics["accuracy"] == best_error
    assert plain.compressed["val_accuracy"] == pytest.approx(1.0 - best_error)
    assert run.best_policy.meta["evaluation"]["metric"] == "user"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": 3}, r"model= is a int; pass an nn.Module, or a model name"),
        ({"model": small_cnn(), "data": object()}, r"split 'train' is a object; give a DataLoader"),
        ({"model": small_cnn(), "data": {"dev": []}}, r"give 'train' and optionally 'val'"),
        ({"model": "demo", "evaluate": 5}, r"evaluate= is a int; pass a function"),
    ],
)
def test_wrong_types_are_one_line(kwargs, message, tmp_path):
    with pytest.raises(AutopruneError, match=message) as caught:
        autoprune.search(runs_dir=tmp_path, episodes=2, **kwargs)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert not (tmp_path / "searches").exists()


def test_objects_refuse_worker_processes(trained, loaders, tmp_path):
    with pytest.raises(AutopruneError, match="worker processes rebuild the model"):
        autoprune.search(trained, loaders, agent="tpe", workers=2, runs_dir=tmp_path)


def test_named_bundle_reloads_standalone(weights, tmp_path, digits):
    """best_model.apz of a named search rebuilds with no other argument, anywhere."""
    run = autoprune.search(
        "demo", "digits", agent="random", episodes=2, val_samples=100,
        runs_dir=tmp_path / "runs", weights=weights,
    )  # fmt: skip
    alone = tmp_path / "elsewhere" / "model.apz"
    alone.parent.mkdir()
    shutil.copy(run.run_dir / "best_model.apz", alone)
    model = autoprune.load_compressed(alone)
    source = run.best_policy.meta["evaluation"]["source"]
    assert source == {"model": "demo", "input_shape": [1, 8, 8], "num_classes": 10,
                      "dataset": "digits"}  # fmt: skip
    expected = run.session.evaluator.compress(run.best_policy)
    x = digits.x_test[:16]
    with torch.no_grad():
        assert torch.allclose(model(x), expected(x), atol=1e-4)


def test_file_model_bundle_reloads_standalone(tmp_path: Path, digits):
    """A file.py:fn model is recorded by absolute path and rebuilt without config.json."""
    net_file = tmp_path / "mynet.py"
    net_file.write_text(
        "from torch import nn\n"
        "def build(in_channels, num_classes):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 8, 3), nn.ReLU(), nn.Flatten(),\n"
        "                         nn.Linear(8 * 6 * 6, num_classes))\n"
    )
    torch.manual_seed(0)
    net = autoprune.train(f"{net_file}:build", "digits", epochs=2)
    state = tmp_path / "w.pt"
    torch.save(net.state_dict(), state)
    run = autoprune.search(
        f"{net_file}:build", "digits", agent="random", episodes=2, val_samples=100,
        runs_dir=tmp_path / "runs", weights=state,
    )  # fmt: skip
    alone = tmp_path / "copy.apz"
    shutil.copy(run.run_dir / "best_model.apz", alone)
    model = autoprune.load_compressed(alone)
    assert isinstance(model, nn.Sequential)
    with torch.no_grad():
        assert model(digits.x_test[:4]).shape == (4, 10)


def test_search_prices_at_the_deployment_shape(trained, loaders, tmp_path):
    """input_shape prices the model at another resolution than the data it is scored on."""
    at_data = autoprune.search(
        trained, loaders, agent="random", episodes=2, runs_dir=tmp_path / "a"
    ).baseline_metrics["macs"]
    run = autoprune.search(
        trained, loaders, agent="random", episodes=2, runs_dir=tmp_path / "b",
        input_shape="1,32,32",
    )  # fmt: skip
    assert run.baseline_metrics["macs"] > 10 * at_data  # convolutions on 16x the pixels
    assert run.best_policy.meta["evaluation"]["source"]["priced_at"] == [1, 32, 32]
    applied = autoprune.apply(run)
    assert applied.original["macs"] == pytest.approx(run.baseline_metrics["macs"])
    assert applied.compressed["macs"] == pytest.approx(run.best_policy.metrics["macs"])
