"""Baseline checkpoints are trained once and then reused."""

from __future__ import annotations

import json

import pytest
import torch

import autoprune.workflow.baseline as baseline_module
from autoprune.core.errors import AutopruneError
from autoprune.core.training import TrainConfig
from autoprune.workflow.baseline import BaselineRequest, train_baseline


def test_second_request_loads_the_checkpoint(digits, tmp_path, monkeypatch):
    request = BaselineRequest("demo", "digits", TrainConfig(epochs=1, batch_size=64))
    first = train_baseline(request, digits, tmp_path)
    assert not first.cached
    meta = json.loads(first.weights_path.with_suffix(".json").read_text())
    for key in ("model", "dataset", "val_accuracy", "test_accuracy", "seed", "epochs"):
        assert key in meta
    assert meta["epochs"] == 1 and meta["model"] == "demo"

    def no_training(*args, **kwargs):
        raise AssertionError("a cached baseline must not be retrained")

    monkeypatch.setattr(baseline_module, "train", no_training)
    second = train_baseline(request, digits, tmp_path)
    assert second.cached
    torch.testing.assert_close(first.model(digits.x_val[:4]), second.model.eval()(digits.x_val[:4]))
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


def test_different_settings_use_different_checkpoints():
    a = BaselineRequest("demo", "digits", TrainConfig(epochs=1))
    b = BaselineRequest("demo", "digits", TrainConfig(epochs=1, lr=0.01))
    assert a.stem() != b.stem()
    assert a.stem() == BaselineRequest("demo", "digits", TrainConfig(epochs=1)).stem()


def test_request_for_another_dataset_is_refused(digits, tmp_path):
    request = BaselineRequest("demo", "fashion-mnist", TrainConfig(epochs=1))
    with pytest.raises(AutopruneError, match="fashion-mnist"):
        train_baseline(request, digits, tmp_path)
