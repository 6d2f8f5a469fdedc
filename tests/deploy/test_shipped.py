"""``apply RUN`` of a one-shot search ships the method's own retrained model (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import autoprune
from autoprune.cli import main
from autoprune.coding import inspect_apz, state_dict_from_apz

FAST = {"prune_epochs": 1, "quant_epochs": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deep-compression search of LeNet-300-100 on digits at 1/40 of the float size."""
    folder = tmp_path_factory.mktemp("one-shot")
    config = folder / "dc.yaml"
    config.write_text(yaml.safe_dump({"agent_options": FAST}))
    args = ["--quiet", "--threads", "1", "search", "--config", str(config)]
    args += ["--model", "lenet300", "--dataset", "digits", "--agent", "deep-compression"]
    assert main([*args, "--target", "size=1/40", "--runs-dir", str(folder / "runs")]) == 0
    return next((folder / "runs" / "searches").glob("lenet300__deep-compression__*"))


def _apply(run: Path, out: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    capsys.readouterr()
    args = ["--quiet", "apply", run.name, "--export", str(out), "--json", *extra]
    assert main([*args, "--runs-dir", str(run.parent.parent)]) == 0
    return json.loads(capsys.readouterr().out)


def test_apply_run_ships_the_retrained_model_with_the_printed_accuracy(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    printed = json.loads((run / "summary.json").read_text())["best"]["metrics"]["accuracy"]
    report = _apply(run, tmp_path / "out", capsys)
    assert report["evaluation"]["shipped"].endswith("trained_model.apz")
    assert report["evaluation"]["search_val_accuracy"] == printed
    assert report["compressed"]["val_accuracy"] == printed  # the same number, same images
    shipped = state_dict_from_apz(tmp_path / "out" / "model.apz")
    trained = state_dict_from_apz(run / "trained_model.apz")
    for key, value in trained.items():
        assert torch.equal(shipped[key], value), key  # coded again bit for bit
    alone = autoprune.load_compressed(tmp_path / "out" / "model.apz")  # the file tells its data
    for key, value in alone.state_dict().items():
        assert torch.equal(trained[key], value), key


def test_reapply_policy_compresses_the_original_weights(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    report = _apply(run, tmp_path / "out", capsys, "--reapply-policy")
    assert "shipped" not in report["evaluation"]
    policy = json.loads((run / "best_policy.json").read_text())
    searched = policy["metrics"]["accuracy_without_retraining"]
    assert report["evaluation"]["search_val_accuracy"] == searched
    assert report["compressed"]["val_accuracy"] == pytest.approx(searched, abs=1e-9)


def test_deep_compression_uses_its_budget_within_two_percent(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    limit = summary["baseline_metrics"]["size"] / 40
    shipped = inspect_apz(run / "trained_model.apz").file_bytes
    assert 0.98 * limit <= shipped <= limit
    assert summary["best"]["metrics"]["size"] == shipped  # the record prices the shipped file
