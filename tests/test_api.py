"""The Python API: search → apply → load_compressed, on the same pipeline as the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import autoprune
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.tracking import TrackingStore
from autoprune.tracking._location import make_client

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(weights, tmp_path_factory) -> autoprune.SearchRun:
    runs = tmp_path_factory.mktemp("api") / "runs"
    options = {"agent": "random", "episodes": 3, "val_samples": 100}
    return autoprune.search("demo", "digits", runs_dir=runs, weights=weights, **options)


def test_search_runs_the_cli_pipeline(run, weights):
    assert isinstance(run.best_policy, Policy)
    assert len(run.history) == 3 and run.method == "random"
    assert run.weights == weights
    for name in ("summary.json", "best_policy.json", "best_model.apz", "config.json"):
        assert (run.run_dir / name).is_file(), name
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["evaluations"] == 3
    client = make_client(TrackingStore.resolve(str(run.run_dir.parents[1] / "mlflow")).uri)
    mlflow_run = client.get_run(run.run_id)
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["agent"] == "random"
    assert run.best_policy.metrics["macs"] <= 0.5 * run.baseline_metrics["macs"]


def test_search_refuses_a_bad_setting_before_any_work(tmp_path):
    with pytest.raises(AutopruneError, match="unknown config key"):
        autoprune.search(runs_dir=tmp_path, episodez=3)
    with pytest.raises(AutopruneError, match="agent"):
        autoprune.search(agent="annealing", runs_dir=tmp_path)
    assert not (tmp_path / "searches").exists()


def test_apply_then_load_compressed_rebuilds_the_exported_model(run, tmp_path, digits):
    out = tmp_path / "export"
    applied = autoprune.apply(run, export_dir=out)
    assert {"state_dict", "onnx", "apz", "report"} <= set(applied.files)
    assert (out / "policy.json").is_file()
    x = digits.x_test[:32]
    with torch.no_grad():
        expected = applied.model.eval()(x)
        # model.apz of an export: the model is found by the policy's fingerprint
        from_apz = autoprune.load_compressed(out / "model.apz")(x)
        from_pt = autoprune.load_compressed(out / "model.pt", model="demo")(x)
    assert torch.allclose(from_apz, expected, atol=1e-5)
    assert torch.allclose(from_pt, expected, atol=1e-5)


def test_load_compressed_reads_a_search_best_model(run, digits):
    model = autoprune.load_compressed(run.run_dir / "best_model.apz")  # config.json beside
    keep = run.best_policy.keep_ratios()
    conv1 = dict(model.named_modules())["conv1"]
    assert conv1.out_channels == pytest.approx(16 * keep["conv1"], abs=1)
    assert model(digits.x_test[:4]).shape == (4, digits.num_classes)


def test_apply_takes_a_policy_file(run, tmp_path):
    assert autoprune.apply is autoprune.api.apply
    path = run.best_policy.save(tmp_path / "best.json")
    applied = autoprune.api.apply(path, weights=run.weights, export_dir=tmp_path / "out")
    assert applied.files["apz"] == tmp_path / "out" / "model.apz"
    with pytest.raises(AutopruneError, match="weights is required"):
        autoprune.apply(path)


def test_load_compressed_explains_a_missing_policy(tmp_path):
    torch.save({}, tmp_path / "model.pt")
    with pytest.raises(AutopruneError, match="policy.json"):
        autoprune.load_compressed(tmp_path / "model.pt")
    with pytest.raises(AutopruneError, match="does not exist"):
        autoprune.load_compressed(tmp_path / "missing.apz")


@pytest.mark.slow
def test_readme_one_liner_in_a_fresh_process(weights, tmp_path):
    code = (
        "import autoprune; "
        f"r = autoprune.search('demo', 'digits', episodes=4, weights={str(weights)!r}); "
        "print(r.best_policy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Policy(" in done.stdout
    assert (tmp_path / "runs" / "mlflow").exists()


@pytest.mark.slow
def test_quickstart_example_runs(weights, tmp_path):
    script = ROOT / "examples" / "quickstart.py"
    done = subprocess.run(
        [sys.executable, str(script), "--weights", str(weights), "--episodes", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "max |logit difference|" in done.stdout
    assert (tmp_path / "quickstart_out" / "model.apz").is_file()
