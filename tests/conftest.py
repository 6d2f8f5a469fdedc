"""Fixtures shared across the test suite."""

from __future__ import annotations

import pytest
import torch

from autoprune.data import DataSplits, load_dataset

# Tests use tiny tensors: one thread avoids thread start-up and contention costs.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits() -> DataSplits:
    """scikit-learn digits, the embedded default dataset."""
    return load_dataset("digits", seed=0)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
