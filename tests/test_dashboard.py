"""The search dashboard in MLflow (issue 15, part 4), read back with ``MlflowClient``.

A tiny real search (demo CNN on digits, joint mode, two budget targets) and a two-method
``compare`` run once per module; the tests read what they logged: per-episode metrics, the
per-layer tables and heat-maps, summary tags, provenance params, the compare parent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from importlib.metadata import version
from pathlib import Path

import pytest

import autoprune
from autoprune.cli import main
from autoprune.core.errors import AutopruneError
from autoprune.core.results import SearchResult
from autoprune.searches import search_run
from autoprune.tracking import (
    LayerTable,
    SearchTracker,
    autoprune_commit,
    episode_values,
    provenance_params,
    summary_tags,
)
from autoprune.tracking.plots import plot_layer_heatmap

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPISODES = 4
TARGETS = ["flops=0.6", "size=0.6"]


@pytest.fixture(scope="module")
def searched(weights, tmp_path_factory):
    """A joint-mode random search of 4 episodes; the per-layer view refreshed every 2."""
    runs = tmp_path_factory.mktemp("dashboard") / "runs"
    refreshes: list[int] = []
    original = SearchTracker.log_layers

    def spy(self, records, out_dir):
        refreshes.append(len(records))
        return original(self, records, out_dir)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_run, "LAYER_REFRESH_EVERY", 2)
        patch.setattr(SearchTracker, "log_layers", spy)
        run = autoprune.search(
            "demo",
            "digits",
            target=TARGETS,
            agent="random",
            episodes=EPISODES,
            mode="joint",
            runs_dir=runs,
            weights=weights,
            val_samples=100,
        )
    client = _client(runs)
    return run, client, refreshes


@pytest.fixture(scope="module")
def compared(weights, tmp_path_factory):
    """``autoprune compare --agents random,tpe`` with 3 episodes each."""
    runs = tmp_path_factory.mktemp("compare") / "runs"
    args = ["compare", "--agents", "random,tpe", "--episodes", "3", "--target", "flops=0.6"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "--weights", str(weights), "--runs-dir", str(runs), "--json"])
    assert code == 0
    parent_id = json.loads(out.getvalue())["run_id"]
    return parent_id, _client(runs), weights


def _client(runs: Path):
    from mlflow import MlflowClient

    from autoprune.tracking import TrackingStore

    return MlflowClient(tracking_uri=TrackingStore.resolve(str(runs / "mlflow")).uri)


def _history(client, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_every_episode_metric_has_one_value_per_episode(searched) -> None:
    run, client, _ = searched
    keys = client.get_run(run.run_id).data.metrics
    expected = {
        "reward",
        "feasible",
        "eval_seconds",
        "accuracy",
        "macs_ratio",
        "size_ratio",
        "latency_ratio",
        "budget_use_macs",
        "budget_use_size",
    }
    assert expected <= set(keys)
    for key in keys:  # no one-dot charts: every metric is a curve over the episodes
        assert sorted(_history(client, run.run_id, key)) == list(range(EPISODES)), key


def test_episode_values_match_the_records(searched) -> None:
    run, client, _ = searched
    base = run.baseline_metrics
    accuracy = _history(client, run.run_id, "accuracy")
    macs_ratio = _history(client, run.run_id, "macs_ratio")
    use = {k: _history(client, run.run_id, f"budget_use_{k}") for k in ("macs", "size")}
    for record in run.history:
        assert accuracy[record.index] == pytest.approx(record.metrics["accuracy"])
        assert macs_ratio[record.index] == pytest.approx(record.metrics["macs"] / base["macs"])
        # budget use = cost over its limit (0.6 of the baseline's)
        for key in ("macs", "size"):
            expected = record.metrics[key] / (0.6 * base[key])
            assert use[key][record.index] == pytest.approx(expected, rel=1e-6)
    assert not client.get_metric_history(run.run_id, "budget_use")  # the old, empty key


def test_summary_values_are_tags_not_metrics(searched) -> None:
    run, client, _ = searched
    data = client.get_run(run.run_id).data
    best = run.best
    assert best is not None
    for key in ("best_reward", "search_seconds", "evaluations", "baseline_accuracy"):
        assert key not in data.metrics
    tags = data.tags
    assert float(tags["best.accuracy"]) == pytest.approx(best.metrics["accuracy"], rel=1e-5)
    assert float(tags["best.reward"]) == pytest.approx(best.reward, rel=1e-5)
    assert int(tags["best.episode"]) == best.index
    for key in ("macs", "size"):
        value = best.metrics[f"budget_use_{key}"]
        assert float(tags[f"best.budget_use_{key}"]) == pytest.approx(value, rel=1e-5)
    assert float(tags["baseline.accuracy"]) == pytest.approx(run.baseline_metrics["accuracy"])
    assert tags["search.evaluations"] == str(EPISODES)
    assert int(tags["search.feasible"]) == sum(r.feasible for r in run.history)
    assert float(tags["search.seconds"]) == pytest.approx(run.seconds, abs=1e-3)


def test_best_accuracy_curve_ends_at_the_best_feasible_accuracy(searched) -> None:
    run, client, _ = searched
    curve = _history(client, run.run_id, "best_accuracy")
    feasible = [r.metrics["accuracy"] for r in run.history if r.feasible]
    assert curve[max(curve)] == pytest.approx(max(feasible))
    values = [curve[s] for s in sorted(curve)]
    assert values == sorted(values)


def test_layer_tables_are_layers_by_episodes(searched, tmp_path) -> None:
    run, client, _ = searched
    listed = {f.path for f in client.list_artifacts(run.run_id, "layers")}
    fields = ("keep_ratio", "sparsity", "w_bits", "a_bits")  # joint mode searches all four
    assert listed == {f"layers/{f}.{ext}" for f in fields for ext in ("csv", "png")}
    local = Path(client.download_artifacts(run.run_id, "layers", str(tmp_path)))
    names = list(run.history[0].policy.layers)
    for field in fields:
        rows = list(csv.reader((local / f"{field}.csv").read_text().splitlines()))
        assert rows[0] == ["layer", *(str(i) for i in range(EPISODES))]
        assert [r[0] for r in rows[1:]] == names
        for row in rows[1:]:
            assert len(row) == EPISODES + 1
            for record in run.history:
                value = getattr(record.policy.layers[row[0]], field)
                assert float(row[record.index + 1]) == pytest.approx(value, rel=1e-5)
        image = (local / f"{field}.png").read_bytes()
        assert image[:8] == PNG_MAGIC and len(image) > 5_000


def test_layer_view_refreshed_during_the_search(searched) -> None:
    _, _, refreshes = searched
    assert refreshes == [2, 4]


def test_provenance_params(searched, weights) -> None:
    run, client, _ = searched
    data = client.get_run(run.run_id).data
    params = data.params
    assert params["provenance.weights"] == str(weights.resolve())
    for package in ("torch", "mlflow", "optuna", "stable-baselines3", "autoprune"):
        assert params[f"provenance.version.{package}"] == version(package)
    commit = autoprune_commit()
    assert params["provenance.git_commit"] == (commit or "unknown")
    if commit is not None:
        assert data.tags["mlflow.source.git.commit"] == commit


def test_compare_parent_lists_the_agents_and_each_best(compared) -> None:
    parent_id, client, weights = compared
    parent = client.get_run(parent_id)
    params = parent.data.params
    assert params["agents"] == "random,tpe"
    assert "agent" not in params  # no misleading agent=ddpg on the parent
    assert params["provenance.weights"] == str(weights.resolve())
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(c.info.run_name for c in children) == ["random", "tpe"]
    for child in children:
        name, tags = child.info.run_name, child.data.tags
        assert params[f"best_found.{name}"] == tags["best.found"]
        if tags["best.found"] == "true":
            for key in ("accuracy", "reward", "budget_use_macs"):
                expected = float(tags[f"best.{key}"])
                assert float(params[f"best_{key}.{name}"]) == pytest.approx(expected, rel=1e-4)
        assert sorted(_history(client, child.info.run_id, "reward")) == [0, 1, 2]
    assert not parent.data.metrics  # the parent holds no one-dot charts
    artifacts = {f.path for f in client.list_artifacts(parent_id)}
    assert {"comparison.csv", "comparison.json", "comparison.png"} <= artifacts


def test_layer_table_keeps_only_searched_fields(fake_records) -> None:
    records = fake_records([1.0, 0.5, 0.25])  # keep ratio and 8-bit weights/activations
    table = LayerTable.from_records(list(reversed(records)))
    assert table.episodes == (0, 1, 2)
    assert set(table.grids) == {"keep_ratio", "w_bits", "a_bits"}  # no sparsity
    grid = table.grids["keep_ratio"]
    assert len(grid) == len(table.layers) and all(len(row) == 3 for row in grid)
    assert grid[0] == [1.0, 0.5, 0.25]
    lines = table.csv_text("w_bits").splitlines()
    assert lines[0] == "layer,0,1,2" and lines[1].endswith(",8,8,8")


def test_heatmap_refuses_an_unknown_field(tmp_path) -> None:
    with pytest.raises(AutopruneError, match="keep_ratio"):
        plot_layer_heatmap([[1.0]], ["conv"], [0], "bogus", tmp_path / "x.png")


def test_episode_values_and_summary_of_hand_made_records(fake_records) -> None:
    records = fake_records([1.0, 0.5])  # the first breaks the budget
    values = episode_values(records[0], float("-inf"), {"macs": 1e5, "size": 0.0})
    assert "best_accuracy" not in values  # no feasible episode yet
    assert values["macs_ratio"] == pytest.approx(1.0)
    assert "size_ratio" not in values  # a zero baseline has no ratio
    tags = summary_tags(SearchResult("random", records, {"accuracy": 0.95}, seconds=1.5))
    assert tags["best.found"] == "true" and tags["best.episode"] == "1"
    assert tags["search.feasible"] == "1" and tags["baseline.accuracy"] == "0.95"
    assert summary_tags(SearchResult("random", records[:1]))["best.found"] == "false"


def test_provenance_without_weights_or_git(monkeypatch) -> None:
    from autoprune.tracking import _dashboard

    monkeypatch.setattr(_dashboard, "git_sha", lambda path: None)
    found = provenance_params(None)["provenance"]
    assert found["weights"] == "none" and found["git_commit"] == "unknown"
    assert found["version"]["torch"] == version("torch")


def test_run_description_summarises_the_best_policy(fake_records) -> None:
    from autoprune.tracking._dashboard import run_description

    records = fake_records([1.0, 0.5, 0.6])  # best feasible: keep 0.6 (accuracy 0.74)
    result = SearchResult("tpe", records, {"accuracy": 0.95}, seconds=1.0)
    text = run_description(result, "flops=0.6")
    lines = text.splitlines()
    assert lines[0] == "**tpe** search, target `flops=0.6`"
    assert "- best accuracy: 0.7400 (original 0.9500), episode 2" in lines
    assert "- budget use: 0.900 (1.0 = the limit)" in lines
    assert f"- evaluations: 3, distinct policies: {result.distinct_policies}" in lines
    assert "| layer | keep | w bits | a bits | sparsity |" in lines
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == ["| `0` | 0.60 | 8 | 8 | 0.00 |", "| `3` | 1.00 | 8 | 8 | 0.00 |"]  # logits kept
    none = run_description(SearchResult("tpe", records[:1], {}), None)
    assert none.splitlines()[-1] == "No feasible policy in 1 evaluations."


def test_runs_view_and_budget_use_tag(fake_records) -> None:
    from autoprune.tracking._dashboard import RUNS_COLUMNS, dashboard_url, runs_view_state

    tags = summary_tags(SearchResult("random", fake_records([0.5, 0.6]), {"accuracy": 0.9}))
    assert tags["best.budget_use"] == "0.9"  # the largest budget_use_* of the best episode
    view = json.loads(runs_view_state())
    assert view["selectedColumns"] == view["columnOrder"] == [f"tags.`{k}`" for k in RUNS_COLUMNS]
    assert {"search.method", "best.accuracy", "best.budget_use"} <= set(RUNS_COLUMNS)
    assert dashboard_url("3") == (
        "http://127.0.0.1:5000/#/experiments/3/runs"
        "?workflowType=machine_learning&viewStateShareKey=autoprune"
    )
    assert dashboard_url("3", "r1", base="http://h:1").endswith(
        "/#/experiments/3/runs/r1?workflowType=machine_learning"
    )
