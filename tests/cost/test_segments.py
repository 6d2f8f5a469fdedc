from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autoprune.compress import ChannelPlan, pruned_specs
from autoprune.core.policy import LayerPolicy
from autoprune.core.specs import discover_layers
from autoprune.latency import LayerKey, layer_onnx, model_epilogues
from autoprune.models import build_model

INT8 = LayerPolicy(w_bits=8, a_bits=8)


def _epilogues(model: nn.Module, shape: tuple[int, ...]) -> dict:
    model.eval()
    return model_epilogues(model, torch.zeros(1, *shape), discover_layers(model, shape))


def _run(model: bytes) -> None:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {i.name: np.ones(i.shape, np.float32) for i in session.get_inputs()}
    assert all(np.isfinite(out).all() for out in session.run(None, feed))


def test_a_plain_chain_gives_each_layer_its_activation_pooling_and_flatten() -> None:
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )
    found = _epilogues(net, (1, 8, 8))
    assert {name: e.ops for name, e in found.items()} == {
        "0": ("Relu", "MaxPool"),  # the BatchNorm is folded into the conv by the export
        "4": ("Relu", "Flatten"),
        "7": (),
    }
    assert found["0"].signature != found["4"].signature and found["7"].signature == ""
    assert found["0"].side_inputs == ()


def test_resnet_residual_add_belongs_to_the_second_conv_of_each_block() -> None:
    found = _epilogues(build_model("resnet20"), (1, 28, 28))
    assert found["conv1"].ops == ("Relu",)
    assert found["layer1.0.conv1"].ops == ("Relu",)
    assert found["layer1.0.conv2"].ops == ("Add", "Relu")
    assert len(found["layer1.0.conv2"].side_inputs) == 1
    assert found["layer2.0.downsample.conv"].ops == ()  # read by the add, which runs later
    assert found["layer3.2.conv2"].ops == ("Add", "Relu", "GlobalAveragePool", "Flatten")
    assert found["fc"].ops == ()


def test_mobilenet_relu6_and_residual_adds_are_kept() -> None:
    found = _epilogues(build_model("mobilenetv2_small"), (1, 28, 28))
    dw = [name for name in found if name.endswith("body.dw")]
    assert dw and all(found[name].ops == ("Clip",) for name in dw)
    assert all(found[name].constants for name in dw)  # the 0 and 6 bounds travel along
    residual = [name for name, e in found.items() if e.ops[:1] == ("Add",)]
    assert residual and all(name.endswith("body.project") for name in residual)


class _Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.conv(x)) * self.scale  # a per-channel multiply
        return torch.cat([out, x], dim=1)


def test_an_epilogue_stops_at_operators_that_depend_on_the_channel_count() -> None:
    assert _epilogues(_Concat(), (2, 6, 6))["conv"].ops == ("Relu",)


@pytest.mark.parametrize("name", ["vgg_small", "resnet20", "mobilenetv2_small"])
def test_pruned_layers_with_their_epilogues_build_runnable_graphs(name: str) -> None:
    model = build_model(name).eval()
    example = torch.zeros(1, 1, 28, 28)
    specs = discover_layers(model, (1, 28, 28))
    found = model_epilogues(model, example, specs)
    plan = ChannelPlan.build(model, example)
    pruned = pruned_specs(specs, plan, {layer: 0.4 for layer in plan.prunable})
    assert pruned != specs
    for spec in pruned:
        key = LayerKey.from_spec(spec, LayerPolicy(), batch_size=1, epilogue=found[spec.name])
        assert str(key).endswith(f"|e{found[spec.name].signature}") == bool(found[spec.name].ops)
        graph = layer_onnx(key)
        onnx.checker.check_model(onnx.load_from_string(graph))
        _run(graph)


@pytest.mark.parametrize(
    "name, layer, fused",
    [
        ("resnet20", "layer1.0.conv2", {"QLinearConv", "QLinearAdd"}),
        ("vgg_small", "conv3", {"QLinearConv", "NhwcMaxPool", "Flatten"}),
    ],
)
def test_int8_layers_carry_their_epilogue_in_qdq_form(
    name: str, layer: str, fused: set[str], tmp_path
) -> None:
    model = build_model(name).eval()
    specs = discover_layers(model, (1, 28, 28))
    found = model_epilogues(model, torch.zeros(1, 1, 28, 28), specs)
    spec = next(s for s in specs if s.name == layer)
    key = LayerKey.from_spec(spec, INT8, batch_size=1, epilogue=found[layer])
    assert key.precision == "int8" and str(key).endswith(f"|e{found[layer].signature}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    session = ort.InferenceSession(layer_onnx(key), options, providers=["CPUExecutionProvider"])
    session.run(None, {i.name: np.ones(i.shape, np.uint8) for i in session.get_inputs()})
    ops = {n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}
    assert fused <= ops
    assert "Relu" not in ops and "Conv" not in ops  # the ReLU folds into the quantization


def test_epilogues_are_the_same_for_every_export_of_the_model() -> None:
    model = build_model("resnet20").eval()
    specs = discover_layers(model, (1, 28, 28))
    first = model_epilogues(model, torch.zeros(1, 1, 28, 28), specs)
    second = model_epilogues(model, torch.ones(1, 1, 28, 28), specs)
    assert {k: e.signature for k, e in first.items()} == {k: e.signature for k, e in second.items()}
