"""Deployment bundles: every file on success, nothing left behind on failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.export import export_bundle

Batches = Callable[[int, int, int], list[np.ndarray]]


class Unexportable(nn.Module):
    """A conv followed by an SVD, which has no ONNX operator."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(self.conv(x).flatten(1))[0]


def test_bundle_writes_loadable_files(
    trained_net: nn.Module, toy_batches: Batches, tmp_path: Path
) -> None:
    out = tmp_path / "deploy"
    paths = export_bundle(
        trained_net, torch.zeros(1, 1, 8, 8), out, calibration=toy_batches(2, 16, 9), int8=True
    )
    assert sorted(p.name for p in out.iterdir()) == ["model.int8.onnx", "model.onnx", "model.pt"]
    assert paths == {
        "state_dict": out / "model.pt",
        "onnx": out / "model.onnx",
        "int8_onnx": out / "model.int8.onnx",
    }
    state = torch.load(paths["state_dict"], weights_only=True)
    assert state.keys() == trained_net.state_dict().keys()
    x = toy_batches(1, 5, 10)[0]
    for kind in ("onnx", "int8_onnx"):
        session = ort.InferenceSession(str(paths[kind]), providers=["CPUExecutionProvider"])
        assert session.run(None, {"input": x})[0].shape == (5, 10)
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]


def test_bundle_into_existing_folder_with_exported_program(
    plain_net: nn.Module, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    paths = export_bundle(
        plain_net, torch.zeros(1, 1, 8, 8), tmp_path, stem="small", exported_program=True
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt",
        "small.onnx",
        "small.pt",
        "small.pt2",
    ]
    program = torch.export.load(str(paths["exported_program"])).module()
    for batch in (1, 3):
        x = torch.randn(batch, 1, 8, 8)
        with torch.no_grad():
            assert torch.allclose(program(x), plain_net(x), atol=1e-5)


def test_failed_bundle_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="cannot export"):
        export_bundle(Unexportable(), torch.zeros(1, 1, 5, 5), tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "model.onnx").write_bytes(b"previous")
    with pytest.raises(AutopruneError, match="cannot export"):
        export_bundle(Unexportable(), torch.zeros(1, 1, 5, 5), existing)
    assert [p.name for p in tmp_path.iterdir()] == ["old"]
    assert [p.name for p in existing.iterdir()] == ["model.onnx"]
    assert (existing / "model.onnx").read_bytes() == b"previous"


def test_bundle_argument_errors(plain_net: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="calibration"):
        export_bundle(plain_net, torch.zeros(1, 1, 8, 8), tmp_path, int8=True)
    with pytest.raises(AutopruneError, match="stem"):
        export_bundle(plain_net, torch.zeros(1, 1, 8, 8), tmp_path, stem="../x")
    assert list(tmp_path.iterdir()) == []
