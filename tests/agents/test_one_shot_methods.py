"""admm and deep-compression as registry methods: one policy, one record, size target met."""

from __future__ import annotations

import re
from dataclasses import fields, replace

import pytest

from agents import check_search, make_method, method_class, run_search
from agents._admm_method import AdmmOptions, yang_budget_for_file
from agents._deep_compression_method import (
    DeepCompressionOptions,
    fit_to_budget,
    kmeans_policy,
)
from autoprune.admm import AdmmConfig
from autoprune.coding import inspect_apz
from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.deep_compression import DeepCompressionConfig, PruneSchedule

FAST = {
    "admm": {"epochs": 1, "finetune_epochs": 1},
    "deep-compression": {"prune_epochs": 2, "quant_epochs": 1},
}


@pytest.mark.parametrize("agent", ["admm", "deep-compression"])
def test_one_shot_method_records_one_feasible_retrained_policy(agent, run_config, session):
    assert method_class(agent).fixed_evaluations == 1
    config = run_config(agent, episodes=1, targets=("size=0.25",), agent_options=FAST[agent])
    result = run_search(config, session=session, run_name=f"one-shot-{agent}")
    assert len(result.history) == 1
    record = result.history[0]
    trained = config.runs_path / "searches" / f"one-shot-{agent}" / "trained_model.apz"
    assert inspect_apz(trained).file_bytes == record.policy.meta["trained_apz_bytes"]
    assert record.policy.meta["trained_apz_bytes"] <= 0.25 * result.baseline_metrics["size"]
    assert record.feasible
    assert record.metrics["size"] <= 0.25 * result.baseline_metrics["size"]
    assert 0.0 <= record.metrics["accuracy_without_retraining"] <= 1.0
    assert record.metrics["accuracy"] > 0.5, "the retrained model should still classify digits"
    layers = record.policy.layers.values()
    assert all(lp.quantizer == "kmeans" and lp.w_bits <= 8 for lp in layers)
    assert any(lp.sparsity > 0 for lp in layers)
    # scored as an episode: the search's reward of the retrained accuracy, the same record
    assert record.reward == record.metrics["accuracy"]  # the default reward, "accuracy"
    assert record.policy.meta["reward"] == "accuracy" and record.policy.meta["method"] == agent
    assert record.policy.meta["evaluation"] == session.evaluator.record()
    assert record.policy.metrics == record.metrics


def test_one_shot_method_refuses_a_larger_budget(run_config, session):
    config = run_config("admm", episodes=3, targets=("size=0.15",), agent_options=FAST["admm"])
    with pytest.raises(AutopruneError, match="pass --episodes 1"):
        run_search(config, session=session)


def _checked(run_config, session, agent: str, target: str) -> None:
    budgeted = replace(session, budget=Budget.parse([target]))
    check_search(run_config(agent, episodes=1, targets=(target,)), budgeted)


def _smallest_bytes(error: AutopruneError) -> int:
    found = re.search(r"can reach is ([0-9,]+) bytes", str(error))
    assert found, str(error)
    return int(found.group(1).replace(",", ""))


def test_one_shot_methods_check_a_size_budget_in_their_own_space(run_config, session):
    # Below pruning's floor: the environment's prune space refuses, sparsity and bits reach it.
    with pytest.raises(AutopruneError, match="infeasible.*min_keep"):
        _checked(run_config, session, "uniform", "size=0.05")
    for agent in ("deep-compression", "admm"):
        _checked(run_config, session, agent, "size=0.05")
        _checked(run_config, session, agent, "bits=0.01")
    # Below biases and codebooks: refused with the method's own smallest size.
    with pytest.raises(AutopruneError, match="method 'deep-compression'.*fc_bits=5"):
        _checked(run_config, session, "deep-compression", "size=100B")
    with pytest.raises(AutopruneError, match="infeasible.*method 'admm'|infeasible.*Yang"):
        _checked(run_config, session, "admm", "size=100B")


def test_the_smallest_size_a_one_shot_method_reports_is_really_reached(run_config, session):
    evaluator = session.evaluator
    for agent in ("deep-compression", "admm"):
        with pytest.raises(AutopruneError) as refused:
            _checked(run_config, session, agent, "size=100B")
        smallest = _smallest_bytes(refused.value)
        assert 100 < smallest < evaluator.baseline_metrics["size"]
        _checked(run_config, session, agent, f"size={smallest}B")  # passed back: accepted
        with pytest.raises(AutopruneError, match="infeasible"):
            _checked(run_config, session, agent, f"size={int(0.97 * smallest)}B")
    # ...and the methods' own fitting finds a policy of at most that size.
    method = make_method("deep-compression", {})
    bits = method.bit_widths(evaluator)
    base = dict.fromkeys(bits, 0.5)
    with pytest.raises(AutopruneError) as refused:
        _checked(run_config, session, "deep-compression", "size=100B")
    limit = float(_smallest_bytes(refused.value))
    targets = fit_to_budget(evaluator, base, bits, {"size": limit})
    assert evaluator.costs(kmeans_policy(evaluator, targets, bits), ["size"])["size"] <= limit
    with pytest.raises(AutopruneError) as refused:
        _checked(run_config, session, "admm", "size=100B")
    limit = float(_smallest_bytes(refused.value))
    assert yang_budget_for_file(evaluator, limit) > 0


def test_admm_without_a_size_target_is_refused_before_anything_is_written(
    run_config, session, tmp_path
):
    config = run_config("admm", episodes=1, targets=("flops=0.5",), runs_dir=str(tmp_path))
    with pytest.raises(AutopruneError, match="needs a model-size target.*bits="):
        run_search(config, session=replace(session, config=config))
    assert not (tmp_path / "searches").exists()


def test_admm_meets_a_bits_target_as_its_own_budget(run_config, session):
    config = run_config("admm", episodes=1, targets=("bits=0.05",), agent_options=FAST["admm"])
    result = run_search(config, session=session)
    (record,) = result.history
    assert record.feasible
    assert record.metrics["bits"] <= 0.05 * result.baseline_metrics["bits"]


@pytest.mark.parametrize(
    ("agent", "library", "only_agent"),
    [("admm", AdmmConfig, "yang_budget"), ("deep-compression", DeepCompressionConfig, "fit_size")],
)
def test_method_options_are_the_library_config_with_its_defaults(
    agent: str, library: type, only_agent: str
) -> None:
    options = make_method(agent).options
    assert isinstance(options, library)
    assert [f.name for f in fields(options)] == [f.name for f in fields(library)] + [only_agent]
    defaults = library()
    assert all(getattr(options, f.name) == getattr(defaults, f.name) for f in fields(library))
    assert make_method("admm", {"rho": 0.05, "batch_size": 32}).options == AdmmOptions(
        rho=0.05, batch_size=32
    )
    given = {"schedule": {"steps": 3}, "tolerance": 0.01, "fit_size": False}
    assert make_method("deep-compression", given).options == DeepCompressionOptions(
        schedule=PruneSchedule(steps=3), tolerance=0.01, fit_size=False
    )


@pytest.mark.parametrize(
    ("agent", "options", "message"),
    [
        ("admm", {"rhoo": 0.1}, r"\['rhoo'\] do not apply to method 'admm'.*rho_growth"),
        ("admm", {"seed": 3}, r"\['seed'\] of method 'admm' are set by the search.*--seed"),
        ("admm", {"codebook_bits": 32}, "set by the search.*yang_budget: true"),
        ("admm", {"rho": 0.0}, "rho 0.0 must be > 0"),
        ("admm", {"yang_budget": "yes"}, "'yang_budget' of method 'admm' must be true or false"),
        ("deep-compression", {"scan_samples": 10}, "set by the search.*val_samples"),
        ("deep-compression", {"fc_bits": 9}, "fc_bits 9 must be 1..8"),
        ("deep-compression", {"schedule": {"stepz": 2}}, r"\['stepz'\].*valid options: steps"),
    ],
)
def test_method_options_are_checked_when_the_method_is_made(
    agent: str, options: dict, message: str
) -> None:
    with pytest.raises(AutopruneError, match=message):
        make_method(agent, options)
