"""A trained demo baseline and a prepared session shared by the agent tests.

Fixtures:
    agent_runs: a temporary ``runs_dir`` holding ``demo.pt``, a demo CNN trained for three
        epochs on digits (so no test trains the full cached baseline).
    base_config: a tiny search config on that baseline (digits, 200 validation images,
        one calibration batch).
    session: ``prepare_search(base_config)``, shared (its evaluator cache grows across tests).
    run_config: factory ``run_config(agent, episodes=5, **changes) -> SearchConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from autoprune.core.training import TrainConfig, train
from autoprune.data import DataSplits
from autoprune.workflow.baseline import build_for
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession, prepare_search

# Tiny tensors: one intra-op thread avoids contention on the shared 2-core machine.
torch.set_num_threads(1)

TINY_NETS: dict[str, dict[str, Any]] = {
    "ddpg": {"warmup_episodes": 2, "net_arch": [8, 8]},
    "td3": {"warmup_episodes": 2, "net_arch": [8, 8]},
    "sac": {"warmup_episodes": 2, "net_arch": [8, 8]},
    "ppo": {"net_arch": [8, 8], "episodes_per_update": 2},
}
"""Options keeping the SB3 networks and warm-ups tiny."""


@pytest.fixture(scope="session")
def agent_runs(tmp_path_factory: pytest.TempPathFactory, digits: DataSplits) -> Path:
    root = tmp_path_factory.mktemp("agent_runs")
    model = build_for("demo", digits)
    train(model, digits, TrainConfig(epochs=3, lr=0.05, batch_size=64))
    torch.save(model.state_dict(), root / "demo.pt")
    return root


@pytest.fixture(scope="session")
def base_config(agent_runs: Path) -> SearchConfig:
    return SearchConfig(
        model="demo",
        weights=str(agent_runs / "demo.pt"),
        dataset="digits",
        targets=("flops=0.5",),
        episodes=5,
        val_samples=200,
        calib_batches=1,
        runs_dir=str(agent_runs),
        checkpoint_every=2,
    )


@pytest.fixture(scope="session")
def session(base_config: SearchConfig) -> SearchSession:
    return prepare_search(base_config)


@pytest.fixture
def run_config(base_config: SearchConfig) -> Callable[..., SearchConfig]:
    def make(agent: str, episodes: int = 5, **changes: Any) -> SearchConfig:
        options = {**TINY_NETS.get(agent, {}), **changes.pop("agent_options", {})}
        return base_config.replace(agent=agent, episodes=episodes, agent_options=options, **changes)

    return make
