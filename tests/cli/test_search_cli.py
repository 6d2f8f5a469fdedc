"""``autoprune search``: the default search, MLflow read-back, export → apply, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoprune.cli import main
from autoprune.tracking import TrackingStore
from autoprune.tracking._location import make_client


@pytest.fixture(scope="module")
def default_search(tmp_path_factory) -> tuple[Path, dict]:
    """The real no-argument search, run in an empty working directory."""
    folder = tmp_path_factory.mktemp("default-search")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(folder)
    try:
        assert main(["search"]) == 0
        runs = sorted((folder / "runs" / "searches").iterdir())
        assert len(runs) == 1
        summary = json.loads((runs[0] / "summary.json").read_text())
    finally:
        monkeypatch.undo()
    return folder, summary


def test_default_search_leaves_a_complete_mlflow_run(default_search):
    folder, summary = default_search
    client = make_client(TrackingStore.resolve(str(folder / "runs" / "mlflow")).uri)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["agent"] == "ddpg" and run.data.tags["model"] == "demo"
    assert run.data.params["episodes"] == "60"
    history = client.get_metric_history(run.info.run_id, "accuracy")
    assert sorted(m.step for m in history) == list(range(60))
    best = client.get_metric_history(run.info.run_id, "best_accuracy")
    values = [m.value for m in sorted(best, key=lambda m: m.step)][:60]
    assert values == sorted(values), "best-so-far must never fall"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"best_policy.json", "summary.json", "plots", "model"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/policy.png", "plots/pareto.png", "plots/reward.png"} <= plots
    assert summary["best"]["metrics"]["macs"] <= 0.5 * summary["baseline_metrics"]["macs"]


def test_export_then_apply_meets_the_budget(default_search, capsys):
    folder, summary = default_search
    runs = folder / "runs"
    policy = folder / "best.json"
    store = str(runs / "mlflow")
    assert main(["export", summary["run_id"], "--tracking-uri", store, "-o", str(policy)]) == 0
    weights = next((runs / "checkpoints").glob("demo__digits__*.pt"))
    args = ["apply", str(policy), "--weights", str(weights), "--export", str(folder / "out")]
    capsys.readouterr()
    assert main([*args, "--runs-dir", str(runs), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["compressed"]["macs"] <= 0.5 * report["original"]["macs"]
    assert (folder / "out" / "model.onnx").is_file()
    # without fine-tuning, apply scores the policy exactly as the search did, same images
    assert report["evaluation"]["recorded"] and report["evaluation"]["same_images"]
    assert report["compressed"]["val_accuracy"] == summary["best"]["metrics"]["accuracy"]
    assert report["original"]["val_accuracy"] == summary["baseline_metrics"]["accuracy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "dqn"], "unknown agent 'dqn'"),
        (["--target", "flops"], "no '='"),
        (["--target", "speed=2"], "unknown budget key 'speed'"),
        (["--mode", "both"], "unknown mode 'both'"),
        (["--episodes", "0"], "episodes 0 must be a positive integer"),
        (["--weights", "missing.pt"], "weights file missing.pt does not exist"),
        (["--model", "resnet99"], "unknown model 'resnet99'"),
        (["--profile", "tpu"], "unknown hardware profile 'tpu'"),
        (["--tracking-uri", "http://127.0.0.1:9"], "http://127.0.0.1:9"),
        (["--resume", "no-such-run"], "no search named 'no-such-run'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["search", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs" / "searches").exists()


def test_bad_config_files_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("agent: [ddpg\n")
    assert main(["search", "--config", "bad.yaml"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    (tmp_path / "typo.yaml").write_text("episode: 3\n")
    assert main(["search", "--config", "typo.yaml"]) == 2
    assert "unknown config key(s) ['episode']" in capsys.readouterr().err


def test_infeasible_budget_fails_before_any_run_is_recorded(default_search, capsys, monkeypatch):
    folder, summary = default_search
    monkeypatch.chdir(folder)
    searches = sorted((folder / "runs" / "searches").iterdir())
    client = make_client(TrackingStore.resolve(str(folder / "runs" / "mlflow")).uri)
    experiment = client.get_run(summary["run_id"]).info.experiment_id
    runs_before = len(client.search_runs([experiment]))
    assert main(["search", "--target", "flops=0.001"]) == 2
    err = capsys.readouterr().err
    assert "infeasible" in err and "smallest this search (mode " in err
    assert sorted((folder / "runs" / "searches").iterdir()) == searches
    assert len(client.search_runs([experiment])) == runs_before


def test_apply_run_takes_model_data_weights_and_profile_from_the_search(default_search, capsys):
    folder, summary = default_search
    runs = folder / "runs"
    name = next((runs / "searches").iterdir()).name
    for ref in (name, summary["run_id"]):  # the run name, then the MLflow run id
        out = folder / f"apply-{ref[:8]}"
        args = ["apply", ref, "--runs-dir", str(runs), "--export", str(out), "--json"]
        capsys.readouterr()
        assert main(args) == 0
        report = json.loads(capsys.readouterr().out)
        # the search's policy on the search's weights: its score repeated on its images
        assert report["evaluation"]["recorded"] and report["evaluation"]["same_images"]
        assert report["compressed"]["val_accuracy"] == summary["best"]["metrics"]["accuracy"]
        assert report["original"]["val_accuracy"] == summary["baseline_metrics"]["accuracy"]
        assert report["profile"]["name"] == "bitfusion"  # the search's profile
        assert (out / "model.apz").is_file()
    assert main(["apply", "no-such-run", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such run or file 'no-such-run'") and "--weights" not in err
