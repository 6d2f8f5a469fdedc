"""``autoprune cost`` and ``autoprune cost validate``."""

from __future__ import annotations

import json

from autoprune.cli import main


def test_cost_table_json_for_a_policy(tmp_path, capsys, digits):
    from autoprune.core.policy import Policy
    from autoprune.core.specs import discover_layers
    from autoprune.workflow.baseline import build_for

    specs = discover_layers(build_for("demo", digits), digits.input_shape)
    Policy.uniform(specs, keep_ratio=0.5, w_bits=4, a_bits=4).save(tmp_path / "p.json")
    assert main(["cost", "--profile", "bitfusion", "--json", "--runs-dir", str(tmp_path)]) == 0
    dense = json.loads(capsys.readouterr().out)
    args = ["cost", "--policy", str(tmp_path / "p.json"), "--json", "--runs-dir", str(tmp_path)]
    assert main(args) == 0
    small = json.loads(capsys.readouterr().out)
    assert [layer["name"] for layer in dense["layers"]] == ["conv1", "conv2", "conv3", "fc"]
    assert small["totals"]["macs"] < 0.4 * dense["totals"]["macs"]
    assert small["totals"]["latency_ms"] < dense["totals"]["latency_ms"]
    assert small["layers"][1]["weight_bits"] == 4


def test_cost_validate_measures_and_logs(tmp_path, capsys, monkeypatch):
    from importlib.resources import files

    import yaml

    from autoprune.latency import _fit as latency_model
    from autoprune.latency import _lut

    monkeypatch.setattr(latency_model, "MAX_ATTEMPTS", 1)  # no second windows when busy
    monkeypatch.setattr(_lut, "MAX_ATTEMPTS", 1)

    quick = yaml.safe_load((files("autoprune") / "profiles" / "cpu.yaml").read_text())
    quick.update(name="quick", repeats=2, rounds=1, model_seconds=0)
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump(quick))
    args = ["cost", "validate", "--samples", "3", "--json", "--runs-dir", str(tmp_path)]
    assert main([*args, "--profile", str(tmp_path / "quick.yaml")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 3 and summary["profile"] == "quick"
    assert summary["attempts"] >= 1 and summary["speed"] > 0
    assert -1.0 <= summary["spearman"] <= 1.0 and summary["mape_percent"] >= 0
    from autoprune.tracking import TrackingStore
    from autoprune.tracking._location import make_client

    client = make_client(TrackingStore.resolve(str(tmp_path / "mlflow")).uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert "spearman" in run.data.metrics
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["latency_validation.png"]


def test_cost_errors_exit_2(capsys, tmp_path):
    assert main(["cost", "--profile", "nope"]) == 2
    assert "unknown hardware profile 'nope'" in capsys.readouterr().err
    assert main(["cost", "validate", "--profile", "bitfusion", "--runs-dir", str(tmp_path)]) == 2
    assert "modelled, not measured" in capsys.readouterr().err
    assert main(["cost", "--policy", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
