"""What ``search`` and ``compare`` print: units and profile, the weights, the warm-up warning;
``export`` by run name; ``$AUTOPRUNE_DATA_DIR``."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch

from autoprune.cli import main
from autoprune.core.training import TrainConfig, train
from autoprune.data import load_dataset
from autoprune.workflow.baseline import build_for

WARMUP = "warning: tpe acts randomly for its first 10 episodes (warm-up), so with --episodes 3"


@pytest.fixture(scope="module")
def short_search(tmp_path_factory) -> dict:
    """A 3-trial TPE search of demo weights trained for one epoch (too short for TPE to
    model; untrained weights are refused as chance level)."""
    folder = tmp_path_factory.mktemp("short-search")
    weights = folder / "demo.pt"
    digits = load_dataset("digits")
    model = build_for("demo", digits)
    train(model, digits, TrainConfig(epochs=1, lr=0.05, batch_size=64))
    torch.save(model.state_dict(), weights)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(folder)
    try:
        args = ["--quiet", "search", "--agent", "tpe", "--episodes", "3", "--weights", "demo.pt"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        monkeypatch.undo()
    assert code == 0, err.getvalue()
    (run,) = (folder / "runs" / "searches").iterdir()
    return {"folder": folder, "run": run, "out": out.getvalue(), "err": err.getvalue()}


def test_search_warns_when_every_action_is_random(short_search):
    lines = short_search["err"].strip().splitlines()
    assert [line for line in lines if "warning:" in line] == [
        f"{WARMUP} every action is random; pass --episodes 11 or more for it to learn"
    ]


def test_search_prints_units_profile_and_the_weights(short_search):
    out = short_search["out"]
    assert "latency ms (bitfusion, modelled)" in out
    assert "energy mJ (bitfusion, modelled)" in out
    assert "size bytes" in out
    assert "weights:    demo.pt   (for autoprune apply --weights)" in out


def test_export_takes_the_run_name(short_search, tmp_path, capsys, monkeypatch):
    folder, run = short_search["folder"], short_search["run"]
    run_id = json.loads((run / "summary.json").read_text())["run_id"]
    monkeypatch.chdir(folder)
    assert main(["export", run.name]) == 0
    by_name = capsys.readouterr().out
    assert main(["export", run_id]) == 0
    assert json.loads(by_name) == json.loads(capsys.readouterr().out)
    runs = str(folder / "runs")
    monkeypatch.chdir(tmp_path)
    assert main(["export", run.name, "--runs-dir", runs, "-o", "p.json"]) == 0
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads(by_name)


def test_export_names_what_it_takes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "demo__ddpg__0__nope"]) == 2
    err = capsys.readouterr().err
    assert "neither an MLflow run id nor a search under runs/searches" in err
    (tmp_path / "runs" / "searches" / "killed").mkdir(parents=True)
    assert main(["export", "killed"]) == 2
    assert "autoprune search --resume killed" in capsys.readouterr().err


def test_compare_warns_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"unrelated.weight": torch.zeros(1)}, tmp_path / "other.pt")
    args = ["compare", "--agents", "tpe,random", "--episodes", "3", "--weights", "other.pt"]
    assert main(args) == 2  # the weights do not fit the model: it stops after the warning
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err[0] == f"{WARMUP} every action is random; pass --episodes 11 or more for it to learn"
    assert err[1].startswith("error: ") and len(err) == 2


@pytest.mark.parametrize("command", ["search", "compare"])
def test_data_dir_environment_variable(command, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "no-data-here"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOPRUNE_DATA_DIR", str(empty))
    # digits-shaped weights: were the variable ignored, the default folder's Fashion-MNIST
    # would load and these weights would fail instead, without naming the folder
    torch.save(build_for("demo", load_dataset("digits")).state_dict(), tmp_path / "w.pt")
    args = [command, "--dataset", "fashion-mnist", "--weights", "w.pt", "--episodes", "2"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "Traceback" not in err
    assert not Path(tmp_path / "runs" / "searches").exists()
