"""Fixtures shared across the test suite."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.core.policy import Policy
from autoprune.core.results import EpisodeRecord
from autoprune.core.specs import discover_layers
from autoprune.data import DataSplits, load_dataset

# Tests use tiny tensors: one thread avoids thread start-up and contention costs.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits() -> DataSplits:
    """scikit-learn digits, the embedded default dataset."""
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo CNN trained on digits for two epochs (a quick stand-in for the cached baseline)."""
    from autoprune.cli import main

    folder = tmp_path_factory.mktemp("weights")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--quiet", "train", "--epochs", "2", "--runs-dir", str(folder), "--json"]) == 0
    return Path(json.loads(out.getvalue())["weights"])


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


RecordFactory = Callable[..., list[EpisodeRecord]]


@pytest.fixture(scope="session")
def fake_records() -> RecordFactory:
    """Build hand-made search records of a tiny CNN, one per keep ratio.

    Accuracy, latency, energy, size and MACs grow with the keep ratio; ``budget_use_macs`` is
    ``1.5 * keep``, so records with keep > 2/3 are infeasible. With ``alternate_float`` the
    even-numbered records keep float weights.
    """
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    specs = discover_layers(model, (1, 8, 8))

    def make(keeps: Sequence[float], alternate_float: bool = False) -> list[EpisodeRecord]:
        records = []
        for index, keep in enumerate(keeps):
            w_bits = 32 if alternate_float and index % 2 == 0 else 8
            policy = Policy.uniform(specs, keep_ratio=keep, w_bits=w_bits, a_bits=8)
            metrics = {
                "accuracy": 0.5 + 0.4 * keep,
                "latency": 2.0 * keep,
                "energy": keep,
                "size": 1e4 * keep,
                "macs": 1e5 * keep,
                "budget_use_macs": 1.5 * keep,
            }
            feasible = metrics["budget_use_macs"] <= 1.0
            records.append(EpisodeRecord(index, policy, metrics["accuracy"], metrics, feasible))
        return records

    return make
