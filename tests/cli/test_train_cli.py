"""The ``autoprune`` CLI: train, layers, and the exit-code-2 error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autoprune.cli import main


def test_train_json_then_cached(tmp_path, capsys):
    args = ["train", "--epochs", "1", "--runs-dir", str(tmp_path), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["cached"] is False and first["epochs"] == 1
    assert 0.0 <= first["test_accuracy"] <= 1.0
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cached"] is True and second["weights"] == first["weights"]


def test_layers_json_lists_the_demo_layers(capsys):
    assert main(["layers", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)
    assert [layer["name"] for layer in layers] == ["conv1", "conv2", "conv3", "fc"]
    assert layers[-1]["prunable"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "nope"], "unknown model 'nope'"),
        (["train", "--dataset", "nope"], "unknown dataset"),
        (["train", "--epochs", "-1"], "epochs -1 is negative"),
        (
            ["layers", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"],
            "apt-get install dataset-fashion-mnist",
        ),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message, capsys, tmp_path):
    assert main([*args, *(["--runs-dir", str(tmp_path)] if args[0] == "train" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_console_script_debug_shows_traceback(tmp_path):
    base = [sys.executable, "-m", "autoprune.cli._app"]
    plain = subprocess.run([*base, "train", "--model", "nope"], capture_output=True, text=True)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run(
        [*base, "--debug", "train", "--model", "nope"], capture_output=True, text=True
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr
