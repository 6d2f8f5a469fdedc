"""``autoprune layers`` and ``autoprune cost`` price the model on its own input shape."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from autoprune.cli import _console, main

VGG_MACS = {28: 7_748_608, 8: 643_584}
"""vgg_small's MACs on Fashion-MNIST's 28x28 input and on digits' 8x8 one."""


def write_fashion_mnist(folder: Path, n_train: int = 50, n_test: int = 10) -> Path:
    """A tiny Fashion-MNIST in IDX files (28x28 images, labels 0-9)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, array in arrays.items():
        magic = (0x0800 | array.ndim).to_bytes(4, "big")
        dims = np.asarray(array.shape, dtype=">u4").tobytes()
        (folder / f"{stem}.gz").write_bytes(gzip.compress(magic + dims + array.tobytes()))
    return folder


@pytest.fixture
def fashion_dir(tmp_path, monkeypatch) -> Path:
    """``$AUTOPRUNE_DATA_DIR`` pointing at a tiny Fashion-MNIST."""
    folder = write_fashion_mnist(tmp_path / "fashion-mnist")
    monkeypatch.setenv("AUTOPRUNE_DATA_DIR", str(folder))
    return folder


def test_layers_use_the_models_own_dataset(fashion_dir, capsys):
    assert main(["layers", "--model", "vgg_small", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)
    assert layers[0]["in_hw"] == [28, 28]
    assert sum(layer["macs"] for layer in layers) == VGG_MACS[28]
    assert main(["layers", "--model", "vgg_small", "--dataset", "digits", "--json"]) == 0
    digits = json.loads(capsys.readouterr().out)
    assert sum(layer["macs"] for layer in digits) == VGG_MACS[8]


def test_layers_table_names_the_input_and_cuts_nothing(fashion_dir, capsys, monkeypatch):
    monkeypatch.setattr(_console.console, "_width", 80)
    assert main(["layers", "--model", "vgg_small"]) == 0
    out = capsys.readouterr().out
    assert "vgg_small on fashion-mnist, input 1x28x28" in out
    assert "…" not in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "fc2 (fixed)" in rows["fc2"] and "3,612,672" in rows["conv2"]
    assert f"{VGG_MACS[28]:,}" in rows["total"]


def test_cost_uses_the_models_own_dataset(fashion_dir, tmp_path, capsys):
    args = ["cost", "--model", "vgg_small", "--runs-dir", str(tmp_path)]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "fashion-mnist" and report["input_shape"] == [1, 28, 28]
    assert report["totals"]["macs"] == VGG_MACS[28]
    assert main([*args, "--dataset", "digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["macs"] == VGG_MACS[8]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "input 1x28x28" in out and "profile bitfusion" in out
    assert "latency ms (bitfusion, modelled)" in out and "energy mJ (bitfusion, modelled)" in out


def test_user_models_need_a_dataset(tmp_path, capsys):
    source = tmp_path / "net.py"
    source.write_text(
        "from torch import nn\n"
        "def net(in_channels, num_classes, input_size):\n"
        "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))\n"
    )
    for command in ("layers", "cost"):
        assert main([command, "--model", f"{source}:net"]) == 2
        err = capsys.readouterr().err
        assert "--dataset is required for model" in err and len(err.splitlines()) == 1
