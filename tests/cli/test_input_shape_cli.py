"""``--input-shape``: ``cost`` and ``layers`` price a model at its deployment resolution."""

from __future__ import annotations

import json

import pytest

from autoprune.cli import main
from autoprune.core.errors import AutopruneError
from autoprune.core.specs import deployment_shape, parse_input_shape
from autoprune.workflow.config import SearchConfig

NET_PY = """
from torch import nn

def net(in_channels=3, num_classes=10):
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, num_classes),
    )
"""


def _cost(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["cost", "--profile", "bitfusion", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_cost_prices_the_deployment_resolution(capsys, tmp_path):
    runs = ["--runs-dir", str(tmp_path)]
    small = _cost(capsys, *runs)  # demo on digits, 1x8x8
    large = _cost(capsys, *runs, "--input-shape", "1,32,32")
    assert small["input_shape"] == [1, 8, 8] and large["input_shape"] == [1, 32, 32]
    assert large["dataset"] == "digits"
    # convolutions scale with the pixels (16x), the classifier does not
    conv = [row["macs"] for row in large["layers"][:3]]
    assert conv == [16 * row["macs"] for row in small["layers"][:3]]
    assert large["layers"][-1]["macs"] == small["layers"][-1]["macs"]


def test_cost_needs_no_dataset_with_an_input_shape(capsys, tmp_path):
    (tmp_path / "net.py").write_text(NET_PY)
    model = f"{tmp_path / 'net.py'}:net"
    args = ["--model", model, "--input-shape", "3,20,20", "--runs-dir", str(tmp_path)]
    report = _cost(capsys, *args)
    assert report["dataset"] == "no dataset" and report["input_shape"] == [3, 20, 20]
    assert report["layers"][0]["macs"] == 8 * 3 * 9 * 20 * 20
    assert main(["layers", "--json", *args[:-2]]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["in_hw"] for r in rows] == [[20, 20], [1, 1]]


def test_bad_input_shapes_are_usage_errors(capsys, tmp_path):
    runs = ["--runs-dir", str(tmp_path)]
    assert main(["cost", "--input-shape", "224,224", *runs]) == 2
    assert "write channels,height,width" in capsys.readouterr().err
    assert main(["cost", "--input-shape", "3,32,32", *runs]) == 2  # digits has 1 channel
    assert "the channels must agree" in capsys.readouterr().err
    assert (
        main(["layers", "--model", "lenet300", "--dataset", "digits", "--input-shape", "1,9,9"])
        == 2
    )
    assert "does not run on input 1x9x9" in capsys.readouterr().err


def test_input_shape_parsing_and_config_key():
    assert parse_input_shape("3x224x224") == (3, 224, 224)
    assert deployment_shape(None, (1, 28, 28)) == (1, 28, 28)
    with pytest.raises(AutopruneError, match="positive integers"):
        parse_input_shape("3,0,224")
    config = SearchConfig.from_mapping({"input_shape": [3, 224, 224]})
    assert parse_input_shape(config.input_shape) == (3, 224, 224)
    with pytest.raises(AutopruneError, match="input shape"):
        SearchConfig.from_mapping({"input_shape": "3,224"})
