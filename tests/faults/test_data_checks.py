"""Data nothing can learn from, and training that learnt nothing, are refused (issue 14,
part 4): exit code 2, one line naming the problem and the fix, and nothing trained on it,
cached or searched.

The data are real ``.npz`` files written to a temporary folder: NaN pixels, a stray label,
one image per class, images that carry no information; the training failures are real
trainings (a learning rate that makes the loss NaN, one that leaves the model at chance).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import autoprune.workflow.baseline as baseline_module
from autoprune.core.training import NonFiniteLoss, TrainConfig
from autoprune.data import DataSplits, load_dataset
from autoprune.workflow.baseline import BaselineRequest, load_baseline, train_baseline

CLASSES = 10
USER_DATA = """
import numpy as np
import torch

from autoprune.data import DataSplits


def raises():
    return np.load("no-such-file.npz")


def nan_splits():
    x = torch.zeros(20, 1, 4, 4)
    x[3, 0, 1, 1] = float("nan")
    y = torch.arange(20) % 2
    return DataSplits.from_tensors("mine", x, y, x, y, x, y, num_classes=2)
"""


def arrays(n: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """8x8 images whose class lights one pixel: easy to learn (10 classes, n/10 each)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % CLASSES
    x = rng.normal(scale=0.3, size=(n, 8, 8)).astype(np.float32)
    x.reshape(n, 64)[np.arange(n), y * 6] += 3.0
    return {"x_train": x, "y_train": y, "x_test": x[:50].copy(), "y_test": y[:50].copy()}


def npz(folder: Path, name: str, data: dict[str, np.ndarray]) -> str:
    path = folder / f"{name}.npz"
    np.savez(path, **data)
    return f"npz:{path}"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was trained on data that should have been refused")

    monkeypatch.setattr(baseline_module, "train", refuse)


def cached_weights(folder: Path) -> list[Path]:
    return list((folder / "runs" / "checkpoints").glob("*.pt"))


def test_nan_pixels_are_refused(here: Path, refused, no_training) -> None:
    data = arrays(1400)
    data["x_train"][100:120, 2, 2] = np.nan  # 20 of 1,400 training images
    line = refused("search", "--dataset", npz(here, "nan", data))
    assert "20 of 1400 images of x_train hold NaN or infinite pixels" in line
    assert "np.nan_to_num" in line
    assert not cached_weights(here) and not (here / "runs" / "searches").exists()


def test_infinite_test_pixels_are_refused(here: Path, refused, no_training) -> None:
    data = arrays()
    data["x_test"][7, 0, 0] = np.inf
    line = refused("train", "--dataset", npz(here, "inf", data))
    assert "x_test hold NaN or infinite pixels (the first at index 7)" in line


def test_a_stray_label_does_not_make_a_thousand_classes(here: Path, refused, no_training) -> None:
    data = arrays()
    data["y_train"][17] = 1000
    line = refused("search", "--dataset", npz(here, "label", data))
    assert "classes 10..999 (990 of 1001) have no training image" in line
    assert not cached_weights(here)


def test_a_test_label_without_training_images(here: Path, refused, no_training) -> None:
    data = arrays()
    data["y_test"][0] = 12
    line = refused("train", "--dataset", npz(here, "test_label", data))
    assert "y_test holds label(s) 12" in line


def test_one_image_per_class_is_refused(here: Path, refused, no_training) -> None:
    data = arrays(10)  # one image of each of the ten classes
    line = refused("search", "--dataset", npz(here, "one", data))
    assert "10 class(es) have fewer than 5 training images (class 0: 1" in line
    assert not cached_weights(here)


@pytest.fixture
def user_data(here: Path) -> Path:
    path = here / "my_data.py"
    path.write_text(USER_DATA)
    return path


def test_user_dataset_function_that_raises(user_data: Path, refused, no_training) -> None:
    line = refused("train", "--dataset", f"{user_data}:raises")
    assert f"dataset '{user_data}:raises' raised FileNotFoundError" in line
    assert f"{user_data}:9 (in raises)" in line


def test_user_datasplits_with_nan(user_data: Path, refused, no_training) -> None:
    line = refused("train", "--dataset", f"{user_data}:nan_splits")
    assert "1 of 20 images of x_train hold NaN" in line


def test_training_at_chance_level_is_refused_and_not_cached(here: Path, refused) -> None:
    data = arrays()
    data["x_train"][:] = 0.0  # every image the same: nothing to learn
    line = refused("train", "--dataset", npz(here, "blank", data), "--epochs", "1")
    assert "at lr 0.05 it ended at chance level" in line
    assert "at lr 0.01 it ended at chance level" in line and "nothing was cached" in line
    assert not cached_weights(here)


def test_a_diverging_loss_is_refused_and_not_cached(here: Path, refused) -> None:
    source = npz(here, "easy", arrays())
    line = refused("train", "--dataset", source, "--epochs", "1", "--lr", "1e30")
    assert "the loss became nan" in line and "(lr 2e+29)" in line
    assert not cached_weights(here)


def test_retry_runs_at_a_fifth_of_the_lr_from_the_same_weights(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = load_dataset(npz(here, "easy", arrays()))
    real_train, attempts = baseline_module.train, []

    def diverge_first(model, data, config, **kwargs):  # the first attempt's loss turns NaN
        attempts.append((config.lr, copy.deepcopy(model.state_dict())))
        if len(attempts) == 1:
            raise NonFiniteLoss(f"the loss became nan at epoch 1, step 3 (lr {config.lr:g})")
        return real_train(model, data, config, **kwargs)

    monkeypatch.setattr(baseline_module, "train", diverge_first)
    request = BaselineRequest("lenet300", data.name, TrainConfig(epochs=3, lr=5.0))
    baseline = train_baseline(request, data, here / "checkpoints")
    (first_lr, first), (second_lr, second) = attempts
    assert (first_lr, second_lr) == (5.0, pytest.approx(1.0))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert baseline.meta["trained_lr"] == pytest.approx(1.0) and baseline.meta["lr"] == 5.0
    assert baseline.meta["val_accuracy"] > 0.5 and baseline.weights_path.is_file()


def test_a_cached_chance_level_baseline_is_not_reused(digits: DataSplits, tmp_path: Path) -> None:
    request = BaselineRequest("demo", "digits", TrainConfig(epochs=1))
    stem = tmp_path / request.stem()
    stem.with_suffix(".pt").write_bytes(b"weights of an old chance-level baseline")
    stem.with_suffix(".json").write_text(json.dumps({"val_accuracy": 0.1}))
    assert load_baseline(request, digits, tmp_path) is None
