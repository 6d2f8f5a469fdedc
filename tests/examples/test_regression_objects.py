"""examples/regression_objects.py: a non-classification model searched from objects."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "regression_objects.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("regression_objects", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regression_search_uses_the_users_metric_and_finetune(example, tmp_path):
    numbers = example.main(episodes=4, runs_dir=str(tmp_path / "runs"), train_epochs=3)
    assert 0 < numbers["val_mse_original"] < 0.3  # learnt: predicting 0 scores ~0.33
    assert numbers["macs_ratio"] <= 0.5 + 1e-6
    assert numbers["val_mse_best_policy"] is not None
    # apply's fine-tune is the user's loop, kept only when it does not worsen the metric
    assert numbers["val_mse_after_apply"] <= numbers["val_mse_best_policy"] + 1e-9
    assert numbers["test_mse_after_apply"] < 0.33
