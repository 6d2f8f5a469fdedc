"""``autoprune apply``'s report: units, predicted vs measured latency, and the warning when
they disagree."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from autoprune.cli import main
from autoprune.cli._apply_report import latency_disagreement
from autoprune.core.policy import Policy
from autoprune.core.specs import discover_layers
from autoprune.cost import load_profile
from autoprune.deploy import apply as apply_module
from autoprune.deploy.apply import ApplyResult
from autoprune.workflow.baseline import build_for


@pytest.fixture
def slower_onnx(monkeypatch) -> None:
    """ONNX Runtime "measures" the compressed model 1.33x slower than the original."""

    def measure(path: Path, *args, **kwargs) -> SimpleNamespace:
        return SimpleNamespace(median_ms=0.3 if Path(path).name == "original.onnx" else 0.4)

    monkeypatch.setattr(apply_module, "measure_latency", measure)


@pytest.fixture
def half_policy(tmp_path, digits, monkeypatch) -> list[str]:
    """``apply`` arguments: untrained demo weights and every layer at half its channels."""
    monkeypatch.chdir(tmp_path)  # runs/ (latency tables) goes there
    model = build_for("demo", digits)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    Policy.uniform(discover_layers(model, digits.input_shape), keep_ratio=0.5).save(
        tmp_path / "policy.json"
    )
    policy, weights = str(tmp_path / "policy.json"), str(tmp_path / "w.pt")
    return ["apply", policy, "--weights", weights, "--export", str(tmp_path / "out")]


def test_apply_labels_units_and_warns_when_measured_latency_rose(half_policy, slower_onnx, capsys):
    assert main(half_policy) == 0
    captured = capsys.readouterr()
    rows = {line.split("│")[1].strip(): line for line in captured.out.splitlines() if "│" in line}
    assert "energy mJ (bitfusion, modelled)" in rows
    assert "latency ms, predicted (bitfusion, modelled)" in rows
    assert "1.33x" in rows["latency ms, measured (ONNX Runtime, this machine)"]
    (warning,) = [line for line in captured.err.splitlines() if "ONNX latency" in line]
    assert re.fullmatch(
        r"warning: measured ONNX latency rose 1\.33x on this machine while the predicted "
        r"latency \(bitfusion, modelled\) fell to 0\.\d+x; that prediction is for the "
        r"modelled hardware, not this CPU: search with --profile cpu to rank policies by "
        r"latency measured here",
        warning,
    )


def test_apply_json_names_the_profile_and_units(half_policy, slower_onnx, capsys):
    assert main([*half_policy, "--profile", "mobile-cpu", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["profile"] == {
        "name": "mobile-cpu",
        "predicted_latency_ms": "modelled",
        "energy": "modelled",
        "onnx_latency_ms": "measured",
    }
    assert report["units"]["latency"] == "ms" and report["units"]["energy"] == "mJ"
    assert "warning: measured ONNX latency rose 1.33x" in captured.err


def _result(original: dict[str, float], compressed: dict[str, float]) -> ApplyResult:
    return ApplyResult(nn.Identity(), original=original, compressed=compressed)


@pytest.mark.parametrize(
    ("measured", "predicted", "warns"),
    [
        ((1.0, 1.2), (1.0, 0.5), True),
        ((1.0, 0.9), (1.0, 0.5), False),  # both fell
        ((1.0, 1.2), (1.0, 1.1), False),  # both rose
    ],
)
def test_latency_disagreement(measured, predicted, warns):
    result = _result(
        {"onnx_latency_ms": measured[0], "predicted_latency_ms": predicted[0]},
        {"onnx_latency_ms": measured[1], "predicted_latency_ms": predicted[1]},
    )
    message = latency_disagreement(result, load_profile("cpu"))
    assert (message is not None) == warns
    if warns:
        assert "rose 1.2x" in message and "(cpu, measured) fell to 0.5x" in message
