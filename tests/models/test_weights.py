"""load_weights: round trips and errors naming the first mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.models import build_model, load_weights


def _trained_demo(num_classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("demo", num_classes=num_classes, input_size=(8, 8))
    model(torch.randn(4, 1, 8, 8))  # move the BatchNorm running statistics off their defaults
    return model.eval()


@pytest.mark.parametrize("wrap", [False, True])
def test_round_trip_gives_identical_outputs(tmp_path: Path, wrap: bool) -> None:
    source = _trained_demo()
    path = tmp_path / "demo.pt"
    state = source.state_dict()
    torch.save({"state_dict": state, "epoch": 3} if wrap else state, path)
    torch.manual_seed(1)
    target = build_model("demo", input_size=(8, 8))
    assert load_weights(target, str(path)) is target
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(target.eval()(x), source(x))


def test_shape_mismatch_names_key_and_shapes(tmp_path: Path) -> None:
    path = tmp_path / "demo10.pt"
    torch.save(_trained_demo(num_classes=10).state_dict(), path)
    target = build_model("demo", num_classes=5, input_size=(8, 8))
    before = target.fc.weight.clone()
    with pytest.raises(AutopruneError) as info:
        load_weights(target, path)
    message = str(info.value)
    assert "'fc.weight' has shape (10, 64) in the file but (5, 64) in the model" in message
    assert "autoprune train" in message
    assert torch.equal(target.fc.weight, before)  # nothing was half-loaded


def test_missing_key_is_the_first_in_model_order(tmp_path: Path) -> None:
    state = _trained_demo().state_dict()
    del state["bn1.weight"]
    del state["fc.bias"]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(AutopruneError, match=r"missing key 'bn1\.weight'; train it"):
        load_weights(build_model("demo"), path)


def test_unexpected_key_is_named(tmp_path: Path) -> None:
    state = _trained_demo().state_dict()
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "extra.pt"
    torch.save(state, path)
    with pytest.raises(AutopruneError, match=r"unexpected key 'extra\.weight'"):
        load_weights(build_model("demo"), path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match=r"absent\.pt' does not exist.*autoprune train"):
        load_weights(build_model("demo"), tmp_path / "absent.pt")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(AutopruneError, match="not a readable state dict"):
        load_weights(build_model("demo"), path)


def test_pickled_whole_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(build_model("demo"), path)
    with pytest.raises(AutopruneError, match=r"torch\.save\(model\.state_dict\(\), path\)"):
        load_weights(build_model("demo"), path)


def test_non_state_dict_content(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(AutopruneError, match="holds a list, not a state dict"):
        load_weights(build_model("demo"), path)
