"""One device setting: resolved once, refused cleanly without CUDA, carried everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autoprune.core.device import resolve_device
from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import prepare_search

CLI = str(Path(sys.executable).with_name("autoprune"))


def test_auto_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")


def test_cuda_without_cuda_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(AutopruneError, match="no CUDA device is available here") as caught:
            resolve_device(name)
        assert "\n" not in str(caught.value)


def test_cuda_resolves_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda:0")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(AutopruneError, match="has 2 CUDA device"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "gpu0"])
def test_unknown_names_are_refused_by_the_config(name):
    with pytest.raises(AutopruneError, match="is unknown; use auto | cpu | cuda | cuda:N"):
        SearchConfig(device=name).check()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
@pytest.mark.parametrize(
    "command",
    [
        ["search", "--device", "cuda", "--episodes", "2"],
        ["train", "--device", "cuda"],
    ],
)
def test_cli_refuses_cuda_before_any_work(command, tmp_path):
    runs = tmp_path / "runs"
    done = subprocess.run(
        [CLI, *command, "--runs-dir", str(runs)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no CUDA device" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (runs / "checkpoints").exists() and not (runs / "searches").exists()


def test_session_puts_model_and_tensors_on_the_device(weights, tmp_path):
    config = SearchConfig(
        weights=str(weights), device="cpu", val_samples=64, runs_dir=str(tmp_path)
    )
    session = prepare_search(config)
    evaluator = session.evaluator
    where = torch.device("cpu")
    assert {p.device for p in session.model.parameters()} == {where}
    assert evaluator.example_input.device == where
    assert {batch.device for batch in evaluator.calib} == {where}
    assert {x.device for x, _ in evaluator.validation.batches(where)} == {where}


def test_checkpoints_are_device_neutral(tmp_path, digits):
    """A baseline saved from any device holds CPU tensors and loads with map_location."""
    from autoprune.core.training import TrainConfig
    from autoprune.models import load_weights
    from autoprune.workflow.baseline import BaselineRequest, build_for, train_baseline

    request = BaselineRequest("demo", "digits", TrainConfig(epochs=1, batch_size=128))
    baseline = train_baseline(request, digits, tmp_path, device=torch.device("cpu"))
    saved = torch.load(baseline.weights_path, map_location="meta", weights_only=True)
    assert saved  # map_location is honoured: nothing is pinned to the saving device
    raw = torch.load(baseline.weights_path, weights_only=True)
    assert {t.device.type for t in raw.values()} == {"cpu"}
    loaded = load_weights(build_for("demo", digits), baseline.weights_path)
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), raw.values(), strict=True)
    )
