"""Hostile inputs: planted pickles, escaping names, secrets, and small files asking for huge
work. Each test really plants, forges or injects the input and asserts what is refused.

Fixtures:
    secure_runs: a temporary ``runs_dir`` for the searches of these tests.
    tiny_config: a 3-episode DDPG search of the demo CNN on digits, tiny networks.
    tiny_session: ``prepare_search(tiny_config)``, shared.
    marker_pickle: ``marker_pickle(path, marker)`` writes a pickle whose loading would
        create ``marker`` (what an attacker plants); the test asserts it never appears.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession, prepare_search


class _Payload:
    """Unpickling this calls ``os.system('touch MARKER')``: code run by a load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def marker_pickle() -> Callable[[Path, Path], None]:
    def plant(path: Path, marker: Path) -> None:
        path.write_bytes(pickle.dumps(_Payload(marker), protocol=2))

    return plant


@pytest.fixture(scope="session")
def secure_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secure_runs")


@pytest.fixture(scope="session")
def tiny_config(weights: Path, secure_runs: Path) -> SearchConfig:
    return SearchConfig(
        model="demo",
        weights=str(weights),
        dataset="digits",
        targets=("flops=0.5",),
        agent="ddpg",
        episodes=3,
        val_samples=200,
        calib_batches=1,
        runs_dir=str(secure_runs),
        checkpoint_every=1,
        agent_options={"warmup_episodes": 1, "net_arch": [8, 8]},
    )


@pytest.fixture(scope="session")
def tiny_session(tiny_config: SearchConfig) -> SearchSession:
    return prepare_search(tiny_config)
