"""admm and deep-compression as registry methods: one policy, one record, size target met."""

from __future__ import annotations

import pytest

from agents import method_class, run_search
from autoprune.errors import AutopruneError

FAST = {
    "admm": {"epochs": 1, "finetune_epochs": 1},
    "deep-compression": {"prune_epochs": 2, "quant_epochs": 1},
}


@pytest.mark.parametrize("agent", ["admm", "deep-compression"])
def test_one_shot_method_records_one_feasible_retrained_policy(agent, run_config, session):
    assert method_class(agent).fixed_evaluations == 1
    config = run_config(agent, episodes=1, targets=("size=0.25",), agent_options=FAST[agent])
    result = run_search(config, session=session)
    assert len(result.history) == 1
    record = result.history[0]
    assert record.feasible
    assert record.metrics["size"] <= 0.25 * result.baseline_metrics["size"]
    assert 0.0 <= record.metrics["accuracy_without_retraining"] <= 1.0
    assert record.metrics["accuracy"] > 0.5, "the retrained model should still classify digits"
    layers = record.policy.layers.values()
    assert all(lp.quantizer == "kmeans" and lp.w_bits <= 8 for lp in layers)
    assert any(lp.sparsity > 0 for lp in layers)


def test_one_shot_method_refuses_a_larger_budget(run_config, session):
    config = run_config("admm", episodes=3, targets=("size=0.15",), agent_options=FAST["admm"])
    with pytest.raises(AutopruneError, match="pass --episodes 1"):
        run_search(config, session=session)
