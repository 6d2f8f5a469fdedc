"""ONNX export: parity with PyTorch, dynamic batch, names, atomic writes, node lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.specs import discover_layers
from autoprune.export import export_onnx, onnx_node_names_for
from autoprune.models import build_model


class Unexportable(nn.Module):
    """A conv followed by an SVD, which has no ONNX operator."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(self.conv(x).flatten(1))[0]


def _run(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x.numpy()})[0]


@pytest.mark.parametrize("net", ["plain_net", "residual_net"])
def test_onnx_matches_torch_at_batch_1_and_4(
    net: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model = request.getfixturevalue(net)
    path = export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    for batch in (1, 4):
        x = torch.randn(batch, 1, 8, 8, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(x).numpy()
        got = _run(path, x)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4


def test_graph_has_named_input_output_and_symbolic_batch(
    residual_net: nn.Module, tmp_path: Path
) -> None:
    path = export_onnx(residual_net, torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert "BatchNormalization" not in {node.op_type for node in graph.node}


def test_static_batch_when_not_dynamic(plain_net: nn.Module, tmp_path: Path) -> None:
    path = export_onnx(plain_net, torch.zeros(3, 1, 8, 8), tmp_path / "m.onnx", dynamic_batch=False)
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


def test_export_restores_training_mode_and_creates_parents(
    plain_net: nn.Module, tmp_path: Path
) -> None:
    plain_net.train()
    path = export_onnx(plain_net, torch.zeros(1, 1, 8, 8), tmp_path / "a" / "b" / "m.onnx")
    assert path.is_file()
    assert all(module.training for module in plain_net.modules())


def test_failed_export_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with pytest.raises(AutopruneError, match="cannot export"):
        export_onnx(Unexportable(), torch.zeros(1, 1, 5, 5), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_bad_arguments_raise(plain_net: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="opset"):
        export_onnx(plain_net, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx", opset=11)
    with pytest.raises(AutopruneError, match="example_input"):
        export_onnx(plain_net, np.zeros((1, 1, 8, 8)), tmp_path / "m.onnx")  # type: ignore[arg-type]


def test_node_names_for_nested_layers(residual_net: nn.Module, tmp_path: Path) -> None:
    path = export_onnx(residual_net, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    found = onnx_node_names_for(path, ["stem.0", "block.0", "fc.2"])
    assert found == {
        "stem.0": ["/stem/stem.0/Conv"],
        "block.0": ["/block/block.0/Conv"],
        "fc.2": ["/fc/fc.2/Gemm"],
    }
    with pytest.raises(AutopruneError, match="'stem.1'"):
        onnx_node_names_for(path, ["stem.1"])


@pytest.mark.parametrize("name", ["mobilenetv2_small"])
def test_every_zoo_layer_maps_to_one_weight_node(name: str, tmp_path: Path) -> None:
    model = build_model(name, in_channels=1, num_classes=10, input_size=(28, 28)).eval()
    path = export_onnx(model, torch.zeros(1, 1, 28, 28), tmp_path / "m.onnx")
    layers = [spec.name for spec in discover_layers(model, (1, 28, 28))]
    found = onnx_node_names_for(path, layers)
    nodes = [names[0] for names in found.values()]
    assert all(len(names) == 1 for names in found.values())
    assert len(set(nodes)) == len(layers)
