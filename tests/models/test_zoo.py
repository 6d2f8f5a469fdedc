"""The model zoo: shapes, sizes, block behaviour, user models and name errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.models import build_model, model_names
from autoprune.models._user import replace_first_conv

ZOO = ["demo", "lenet300", "lenet5", "vgg_small", "resnet20", "mobilenetv2_small"]


def _weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_model_names_lists_the_zoo() -> None:
    assert model_names() == ZOO


@pytest.mark.parametrize("name", ZOO)
def test_forward_on_28x28_gives_one_logit_per_class(name: str) -> None:
    model = build_model(name, in_channels=1, num_classes=7, input_size=(28, 28))
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 7)


@pytest.mark.parametrize("name", ["demo", "vgg_small", "resnet20", "mobilenetv2_small"])
def test_forward_on_3x32x32(name: str) -> None:
    model = build_model(name, in_channels=3, num_classes=10, input_size=(32, 32))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("size", [(8, 8), (12, 9)])
def test_demo_works_on_small_inputs(size: tuple[int, int]) -> None:
    model = build_model("demo", in_channels=1, num_classes=10, input_size=size)
    assert model(torch.randn(2, 1, *size)).shape == (2, 10)
    compressible = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(compressible) == 4


def test_lenet5_has_caffe_weight_count() -> None:
    # 20*1*5*5 + 50*20*5*5 + 800*500 + 500*10
    assert _weights(build_model("lenet5")) == 500 + 25_000 + 400_000 + 5_000 == 430_500


def test_lenet5_flatten_follows_input_size() -> None:
    model = build_model("lenet5", in_channels=3, num_classes=10, input_size=(32, 32))
    assert model.fc1.in_features == 50 * 5 * 5  # 32 -> 28 -> 14 -> 10 -> 5
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_lenet300_weight_count_and_rectangular_input() -> None:
    assert _weights(build_model("lenet300")) == 784 * 300 + 300 * 100 + 100 * 10
    model = build_model("lenet300", in_channels=2, num_classes=4, input_size=(5, 6))
    assert model.fc1.in_features == 60
    assert model(torch.randn(3, 2, 5, 6)).shape == (3, 4)


def test_mobilenetv2_small_has_depthwise_convs() -> None:
    model = build_model("mobilenetv2_small")
    depthwise = [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
    ]
    assert len(depthwise) == 7  # one per inverted residual block
    assert all(m.out_channels == m.in_channels and m.kernel_size == (3, 3) for m in depthwise)


def test_mobilenet_residual_block_adds_its_input() -> None:
    block = build_model("mobilenetv2_small").blocks[2]  # second 24-channel block, stride 1
    assert block.use_residual
    nn.init.zeros_(block.body.project_bn.weight)
    nn.init.zeros_(block.body.project_bn.bias)
    block.eval()
    x = torch.randn(1, 24, 7, 7)
    assert torch.equal(block(x), x)


def test_resnet20_shape_and_shortcut() -> None:
    model = build_model("resnet20")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 + 2  # stem + 18 block convs + two 1x1 projection shortcuts
    assert model.layer1[0].downsample is None
    assert model.layer2[0].downsample.conv.kernel_size == (1, 1)
    block = model.layer1[1]
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    block.eval()
    x = torch.randn(1, 16, 6, 6)
    assert torch.equal(block(x), torch.relu(x))


def test_too_small_input_is_refused() -> None:
    with pytest.raises(AutopruneError, match=r"lenet5.*at least \(16, 16\)"):
        build_model("lenet5", input_size=(12, 12))


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"num_classes": 0}, "num_classes"),
        ({"in_channels": 0}, "in_channels"),
        ({"input_size": (28,)}, "input_size"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict, param: str) -> None:
    with pytest.raises(AutopruneError, match=param):
        build_model("demo", **kwargs)


def test_unknown_name_lists_zoo_and_user_forms() -> None:
    with pytest.raises(AutopruneError) as info:
        build_model("vgg16")
    message = str(info.value)
    assert "'vgg16'" in message
    assert all(name in message for name in ZOO)
    assert "file.py:fn" in message and "module:fn" in message and "torchvision:NAME" in message


def test_file_without_function_is_explained() -> None:
    with pytest.raises(AutopruneError, match=r"net\.py:fn"):
        build_model("net.py")


USER_SOURCE = textwrap.dedent(
    """
    from torch import nn

    def build(in_channels, num_classes, input_size):
        h, w = input_size
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * h * w, num_classes))

    def only_classes(num_classes):
        return nn.Linear(3, num_classes)

    def no_args():
        return nn.Linear(2, 2)

    def everything(**kwargs):
        model = nn.Linear(1, 1)
        model.received = kwargs
        return model

    def not_a_model():
        return 42

    VALUE = 3
    """
)


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_nets.py"
    path.write_text(USER_SOURCE)
    return path


def test_user_model_from_file(user_file: Path) -> None:
    model = build_model(f"{user_file}:build", in_channels=2, num_classes=3, input_size=(4, 5))
    assert model(torch.randn(2, 2, 4, 5)).shape == (2, 3)


def test_user_function_receives_only_the_kwargs_it_accepts(user_file: Path) -> None:
    assert build_model(f"{user_file}:only_classes", num_classes=6).out_features == 6
    assert build_model(f"{user_file}:no_args").out_features == 2
    received = build_model(f"{user_file}:everything", in_channels=3, num_classes=4).received
    assert received == {"in_channels": 3, "num_classes": 4, "input_size": (28, 28)}


def test_user_model_from_module(user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(user_file.parent))
    model = build_model("my_nets:build", in_channels=1, num_classes=5, input_size=(2, 2))
    assert isinstance(model, nn.Sequential)
    assert model(torch.randn(1, 1, 2, 2)).shape == (1, 5)


@pytest.mark.parametrize(
    ("attr", "pattern"),
    [
        ("not_a_model", "returned int, not a torch.nn.Module"),
        ("VALUE", "has no function 'VALUE'"),
        ("missing", "has no function 'missing'"),
    ],
)
def test_user_model_errors(user_file: Path, attr: str, pattern: str) -> None:
    with pytest.raises(AutopruneError, match=pattern):
        build_model(f"{user_file}:{attr}")


def test_missing_user_file_and_module(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="does not exist"):
        build_model(f"{tmp_path / 'absent.py'}:build")
    with pytest.raises(AutopruneError, match="'no_such_pkg_xyz.nets' is not importable"):
        build_model("no_such_pkg_xyz.nets:build")


def test_torchvision_model() -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(AutopruneError, match="torchvision, which is not importable.*pip"):
            build_model("torchvision:resnet18")
        return
    model = build_model("torchvision:resnet18", in_channels=1, num_classes=4)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)


def test_replace_first_conv_adapts_input_channels() -> None:
    model = build_model("vgg_small", in_channels=3, num_classes=10)
    replace_first_conv(model, 1)
    assert model.conv1.in_channels == 1 and model.conv1.out_channels == 32
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
