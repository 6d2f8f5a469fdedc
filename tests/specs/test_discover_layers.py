"""discover_layers on every zoo model, with MACs checked against hand arithmetic."""

from __future__ import annotations

import pytest
from torch import nn

from autoprune.core.specs import discover_layers
from autoprune.models import build_model, model_names

CLASSIFIER = {
    "demo": "fc",
    "lenet300": "fc3",
    "lenet5": "fc2",
    "vgg_small": "fc2",
    "resnet20": "fc",
    "mobilenetv2_small": "fc",
}


@pytest.mark.parametrize("name", model_names())
def test_every_layer_found_and_only_the_classifier_is_not_prunable(name: str) -> None:
    model = build_model(name)
    specs = discover_layers(model, (1, 28, 28))
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert sorted(s.name for s in specs) == sorted(layers)
    assert [s.name for s in specs if not s.prunable] == [CLASSIFIER[name]]
    assert specs[-1].name == CLASSIFIER[name]
    for spec in specs:
        module = model.get_submodule(spec.name)
        assert spec.params == sum(p.numel() for p in module.parameters())
        assert spec.macs > 0


def test_lenet5_macs_by_hand() -> None:
    specs = {s.name: s for s in discover_layers(build_model("lenet5"), (1, 28, 28))}
    assert specs["conv1"].macs == 20 * 24 * 24 * 25 == 288_000
    assert specs["conv2"].macs == 50 * 8 * 8 * 500 == 1_600_000  # 500 = 20 in-ch * 5 * 5
    assert specs["fc1"].macs == 800 * 500 == 400_000
    assert specs["fc2"].macs == 500 * 10 == 5_000
    assert sum(s.macs for s in specs.values()) == 2_293_000
    assert sum(s.weight_count for s in specs.values()) == 430_500
    assert (specs["conv2"].in_hw, specs["conv2"].out_hw) == ((12, 12), (8, 8))


def test_vgg_small_macs_by_hand() -> None:
    specs = {s.name: s for s in discover_layers(build_model("vgg_small"), (1, 28, 28))}
    # conv1: 32 out-ch at 28x28, each 1 in-ch * 3*3     = 32*784*9      = 225,792
    # conv2: 64 out-ch at 14x14 (after pool1), 32*3*3   = 64*196*288    = 3,612,672
    # conv3: 128 out-ch at 7x7 (after pool2), 64*3*3    = 128*49*576    = 3,612,672
    # fc1:   flatten 128*3*3 = 1152 (pool3: 7 -> 3) to 256 = 294,912
    # fc2:   256 -> 10                                  = 2,560
    expected = {
        "conv1": 32 * 28 * 28 * 1 * 9,
        "conv2": 64 * 14 * 14 * 32 * 9,
        "conv3": 128 * 7 * 7 * 64 * 9,
        "fc1": 1152 * 256,
        "fc2": 256 * 10,
    }
    assert {n: s.macs for n, s in specs.items()} == expected
    assert sum(expected.values()) == 7_748_608


def test_mobilenetv2_small_depthwise_kinds() -> None:
    specs = discover_layers(build_model("mobilenetv2_small"), (1, 28, 28))
    depthwise = [s for s in specs if s.kind == "depthwise"]
    assert len(depthwise) == 7
    assert all(s.name.endswith(".body.dw") and s.groups == s.in_channels for s in depthwise)
    assert {s.kind for s in specs} == {"conv", "depthwise", "linear"}
    first_stride2 = next(s for s in depthwise if s.stride == (2, 2))
    # blocks.1: 16 -> 96 hidden channels, 28x28 -> 14x14, one 3x3 filter per channel
    assert first_stride2.name == "blocks.1.body.dw"
    assert first_stride2.macs == 96 * 14 * 14 * 1 * 9 == 169_344


@pytest.mark.parametrize(
    ("name", "stride", "in_hw", "out_hw", "channels"),
    [
        ("layer1.0.conv1", (1, 1), (28, 28), (28, 28), (16, 16)),
        ("layer2.0.conv1", (2, 2), (28, 28), (14, 14), (16, 32)),
        ("layer2.0.downsample.conv", (2, 2), (28, 28), (14, 14), (16, 32)),
        ("layer2.0.conv2", (1, 1), (14, 14), (14, 14), (32, 32)),
        ("layer3.0.conv1", (2, 2), (14, 14), (7, 7), (32, 64)),
        ("layer3.0.downsample.conv", (2, 2), (14, 14), (7, 7), (32, 64)),
        ("layer3.2.conv2", (1, 1), (7, 7), (7, 7), (64, 64)),
    ],
)
def test_resnet20_stage_transitions(
    name: str,
    stride: tuple[int, int],
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    channels: tuple[int, int],
) -> None:
    specs = {s.name: s for s in discover_layers(build_model("resnet20"), (1, 28, 28))}
    assert len(specs) == 22
    spec = specs[name]
    assert (spec.stride, spec.in_hw, spec.out_hw) == (stride, in_hw, out_hw)
    assert (spec.in_channels, spec.out_channels) == channels
    if name.endswith("downsample.conv"):
        assert spec.kernel == (1, 1)
        assert spec.macs == channels[1] * out_hw[0] * out_hw[1] * channels[0]
