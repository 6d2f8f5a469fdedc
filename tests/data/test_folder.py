"""folder:PATH: image folders streamed batch by batch, and the evaluator on streamed data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autoprune.core.errors import AutopruneError
from autoprune.data import load_dataset
from autoprune.workflow import validation
from autoprune.workflow.validation import ValidationSubset


def write_folder(root: Path, per_class: int = 12, size: int = 8, test: bool = True) -> Path:
    """Three classes of grayscale PNGs whose brightness tells the class."""
    rng = np.random.default_rng(0)
    splits = {"train": per_class, **({"test": 4} if test else {})}
    for split, count in splits.items():
        for label in range(3):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 60, (size, size)) + 80 * label
                Image.fromarray(pixels.astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root


def test_folder_streams_normalised_batches(tmp_path):
    data = load_dataset(f"folder:{write_folder(tmp_path)}", val_size=6, seed=0)
    assert data.num_classes == 3 and data.input_shape == (1, 8, 8)
    assert data.describe()["streamed"] and not data.in_memory("train")
    assert (data.size("train"), data.size("val"), data.size("test")) == (30, 6, 12)
    xs, ys = zip(*data.loader("train", batch_size=8), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (30, 1, 8, 8) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2  # normalised by train
    means = [float(x[y == k].mean()) for k in range(3)]
    assert means == sorted(means)  # labels follow the sorted class folders


def test_folder_without_test_uses_validation(tmp_path):
    data = load_dataset(f"folder:{write_folder(tmp_path, test=False)}", val_size=6)
    assert data.size("test") == 6 and data.test is data.val


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda root: None, "has no train/ folder"),
        (lambda root: (root / "train" / "a").mkdir(parents=True), "holds no .png/.jpg images"),
    ],
)
def test_bad_folders_are_one_line(tmp_path, mutate, message):
    mutate(tmp_path)
    with pytest.raises(AutopruneError, match=message):
        load_dataset(f"folder:{tmp_path}")


def test_unreadable_image_names_the_file(tmp_path):
    root = write_folder(tmp_path)
    bad = root / "train" / "class0" / "0.png"
    bad.write_bytes(b"not a png")
    data_error = None
    try:
        data = load_dataset(f"folder:{root}", val_size=3)
        for _ in data.loader("train", batch_size=64):
            pass
    except AutopruneError as exc:
        data_error = str(exc)
    assert data_error is not None and "0.png cannot be read" in data_error


def test_streamed_validation_matches_the_resident_one(tmp_path, monkeypatch):
    data = load_dataset(f"folder:{write_folder(tmp_path)}", val_size=9)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    resident = ValidationSubset(data, 7)
    monkeypatch.setattr(validation, "RESIDENT_BYTES", 0)
    streamed = ValidationSubset(data, 7)
    assert resident.resident and not streamed.resident
    assert streamed.count == resident.count == 7
    assert streamed.fingerprint == resident.fingerprint
    assert streamed.top1(model.eval()) == resident.top1(model.eval())
